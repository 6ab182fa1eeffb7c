-- The attempt fence: a step's row still belongs to the run that reports on it
-- (attempt p_attempt of worker p_worker) and that run has not been finished
-- yet. Callers add the states they accept (running; enqueued for a worker that
-- was presumed lost and came back). Every writer that takes a worker's word
-- for a run checks it here: weft.finish_steps, weft.release_steps, and the
-- expansion lock of src/store/finish.ts.
--
-- worker_id is compared with IS NOT DISTINCT FROM, which no index serves: a
-- finish must find its rows by id, never through steps_running (see
-- weft.finish_steps). LANGUAGE sql and IMMUTABLE: inlined, so the planner sees
-- the same conditions as if they were written out.
CREATE OR REPLACE FUNCTION weft.holds_attempt(p_worker_id text, p_attempts integer, p_finished_at timestamptz,
                                              p_worker text, p_attempt integer)
RETURNS boolean
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT p_attempts = p_attempt AND p_worker_id IS NOT DISTINCT FROM p_worker AND p_finished_at IS NULL
$fn$;
