-- A step's error history stays small, and says why each worker was lost (issue 15).
--
-- 1. Only the latest attempts keep their whole error in steps.errors. The
--    worker caps each error record (src/core/error-record.ts: message 64 KiB,
--    200 frames of 2 KiB, class 256 characters), but a record kept whole for
--    every one of up to 100 attempts still made task views of megabytes.
--    Older entries keep their class, kind and the head of their message.
-- 2. Whoever starts a worker process and sees it exit (weft's cluster
--    supervisor) records the exit on the worker's row in weft.processes. The
--    lease sweep that runs a lost worker's steps again writes each loss into
--    the step's error history with its cause, and WorkerLostError counts the
--    causes: "lost its worker 5 times: 3 crashed (SIGSEGV), 2 went silent".
--    A loss whose exit nobody saw "went silent": killed from outside, crashed
--    with no supervisor watching, or cut off from the database; weft cannot
--    tell those apart and does not pretend to.
--
-- Never edit this file once it has landed: add the next number instead.

-- ---------------------------------------------------------------------------
-- 1. Whole errors for the latest attempts only
-- ---------------------------------------------------------------------------

-- Entries of steps.errors older than the latest 3 lose their backtrace and
-- keep the first 1,024 characters of their message (`trimmed: true`). A
-- trigger, so that every writer of `errors` (a failed finish, a lost worker)
-- is capped in one place; it fires only for updates that set `errors`, never
-- for a step that completes.
CREATE FUNCTION weft.trim_step_errors() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  NEW.errors := (
    SELECT jsonb_agg(CASE WHEN e.n <= e.total - 3 AND e.x->'trimmed' IS NULL AND jsonb_typeof(e.x) = 'object'
                          THEN (e.x - 'backtrace') || jsonb_build_object(
                                 'backtrace', '[]'::jsonb, 'trimmed', true,
                                 'message', CASE WHEN length(e.x->>'message') > 1024 THEN left(e.x->>'message', 1024) || '…'
                                                 ELSE coalesce(e.x->>'message', '') END)
                          ELSE e.x END ORDER BY e.n)
      FROM (SELECT a.x, a.n, count(*) OVER () AS total FROM jsonb_array_elements(NEW.errors) WITH ORDINALITY AS a(x, n)) AS e);
  RETURN NEW;
END $fn$;

CREATE TRIGGER steps_trim_errors BEFORE UPDATE OF errors ON weft.steps
  FOR EACH ROW WHEN (jsonb_typeof(NEW.errors) = 'array' AND jsonb_array_length(NEW.errors) > 3)
  EXECUTE FUNCTION weft.trim_step_errors();
