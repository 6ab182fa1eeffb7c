-- Record the exit of the process `p_pid` on `p_host` (its latest row: a pid
-- can be reused). Returns the process id, or NULL when it has no row (it
-- deregistered on a clean stop, or never registered).
CREATE OR REPLACE FUNCTION weft.record_process_exit(p_host text, p_pid integer, p_exit jsonb) RETURNS text
LANGUAGE sql AS $fn$
  UPDATE weft.processes SET exit = p_exit || jsonb_build_object('at', clock_timestamp())
   WHERE id = (SELECT id FROM weft.processes WHERE host = p_host AND pid = p_pid ORDER BY started_at DESC LIMIT 1)
  RETURNING id
$fn$;
