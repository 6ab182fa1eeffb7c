-- `p_errors` with `p_entry` appended, and entries older than the latest 3
-- without their backtrace and with the first 1,024 characters of their
-- message (`trimmed: true`). Every writer of steps.errors goes through it: a
-- failed finish (weft.finish_steps, below) and a lost worker
-- (weft.requeue_lost_steps, section 2).
CREATE OR REPLACE FUNCTION weft.append_error(p_errors jsonb, p_entry jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
  v_all jsonb := coalesce(p_errors, '[]'::jsonb) || jsonb_build_array(p_entry);
BEGIN
  IF jsonb_array_length(v_all) <= 3 THEN
    RETURN v_all;
  END IF;
  RETURN (
    SELECT jsonb_agg(CASE WHEN e.n <= e.total - 3 AND e.x->'trimmed' IS NULL AND jsonb_typeof(e.x) = 'object'
                          THEN (e.x - 'backtrace') || jsonb_build_object(
                                 'backtrace', '[]'::jsonb, 'trimmed', true,
                                 'message', CASE WHEN length(e.x->>'message') > 1024 THEN left(e.x->>'message', 1024) || '…'
                                                 ELSE coalesce(e.x->>'message', '') END)
                          ELSE e.x END ORDER BY e.n)
      FROM (SELECT a.x, a.n, count(*) OVER () AS total FROM jsonb_array_elements(v_all) WITH ORDINALITY AS a(x, n)) AS e);
END $fn$;
