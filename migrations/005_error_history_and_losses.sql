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

-- ---------------------------------------------------------------------------
-- 2. How each worker was lost
-- ---------------------------------------------------------------------------

-- {cause: crashed|killed|exited, signal?, code?, seen_by, at}: the process
-- exited, as the process that started it saw (src/core/process-exit.ts
-- classifies). NULL while it runs, or when nobody watching it saw it go.
ALTER TABLE weft.processes ADD COLUMN exit jsonb;

-- Record the exit of the process `p_pid` on `p_host` (its latest row: a pid
-- can be reused). Returns the process id, or NULL when it has no row (it
-- deregistered on a clean stop, or never registered).
CREATE FUNCTION weft.record_process_exit(p_host text, p_pid integer, p_exit jsonb) RETURNS text
LANGUAGE sql AS $fn$
  UPDATE weft.processes SET exit = p_exit || jsonb_build_object('at', clock_timestamp())
   WHERE id = (SELECT id FROM weft.processes WHERE host = p_host AND pid = p_pid ORDER BY started_at DESC LIMIT 1)
  RETURNING id
$fn$;

-- How a loss reads, from its entry in steps.errors: crashed (SIGSEGV), killed
-- (SIGKILL), exited (code 70), or went silent.
CREATE FUNCTION weft.loss_label(p_loss jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT CASE p_loss->>'cause'
           WHEN 'crashed' THEN format('crashed (%s)', p_loss->>'signal')
           WHEN 'killed' THEN format('killed (%s)', p_loss->>'signal')
           WHEN 'exited' THEN format('exited (code %s)', p_loss->>'code')
           ELSE 'went silent (killed from outside, crashed with no supervisor watching, or cut off from the database)' END
$fn$;

-- The entry a loss adds to steps.errors: attempt p_attempt lost its worker,
-- which exited as p_exit says (NULL: nobody saw it exit).
CREATE FUNCTION weft.loss_entry(p_worker text, p_attempt integer, p_exit jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT e || jsonb_build_object('message', format('attempt %s lost its worker %s: it %s%s', p_attempt, coalesce(p_worker, '?'),
                                                   weft.loss_label(e),
                                                   CASE WHEN e ? 'seen_by' THEN format(', as %s saw', e->>'seen_by') ELSE '' END))
    FROM (SELECT jsonb_build_object('attempt', p_attempt, 'language', 'weft', 'class', 'WorkerLost', 'kind', 'worker_lost',
                                    'permanent', false, 'backtrace', '[]'::jsonb, 'worker', p_worker,
                                    'cause', coalesce(p_exit->>'cause', 'went silent'))
                 || jsonb_strip_nulls(jsonb_build_object('signal', p_exit->'signal', 'code', p_exit->'code', 'seen_by', p_exit->'seen_by')) AS e) AS x
$fn$;

-- "3 crashed (SIGSEGV), 2 went silent (...)": the causes of the latest
-- p_losses losses in p_errors, most frequent first. Losses from before this
-- migration have no entry and are counted as not recorded.
CREATE FUNCTION weft.loss_summary(p_errors jsonb, p_losses integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
  WITH recent AS (
    SELECT a.x FROM jsonb_array_elements(coalesce(p_errors, '[]'::jsonb)) WITH ORDINALITY AS a(x, n)
     WHERE a.x->>'kind' = 'worker_lost' ORDER BY a.n DESC LIMIT p_losses),
  counted AS (
    SELECT weft.loss_label(x) AS label, count(*) AS k FROM recent GROUP BY 1
    UNION ALL
    SELECT 'not recorded (lost before weft recorded why)', p_losses - (SELECT count(*) FROM recent)
     WHERE p_losses > (SELECT count(*) FROM recent))
  SELECT string_agg(format('%s %s', k, label), ', ' ORDER BY k DESC, label) FROM counted
$fn$;

-- As in 002, and: each loss is written into the step's error history with
-- its cause (the worker's recorded exit), the transition names the cause,
-- and WorkerLostError counts the causes of the losses that stopped the step.
CREATE OR REPLACE FUNCTION weft.requeue_lost_steps(p_pid text, p_lease_ms integer, p_max_losses integer, p_outbox boolean, p_limit integer)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_lease interval := make_interval(secs => p_lease_ms / 1000.0);
  v_ids    uuid[];
  v_events weft.step_event[];
  v_fail   jsonb;
  r        record;
BEGIN
  SELECT array_agg(s.id) INTO v_ids
    FROM weft.steps s
   WHERE s.state = 'running' AND s.started_at < clock_timestamp() - v_lease
     AND NOT EXISTS (SELECT 1 FROM weft.processes p
                      WHERE p.id = s.worker_id AND p.heartbeat_at > clock_timestamp() - v_lease);
  IF v_ids IS NULL THEN
    RETURN;
  END IF;
  WITH lost AS (
    UPDATE weft.steps s
       SET state = CASE WHEN s.losses + 1 >= p_max_losses THEN 'error' ELSE 'enqueued' END,
           seq = s.seq + 1, losses = s.losses + 1,
           enqueued_at = CASE WHEN s.losses + 1 >= p_max_losses THEN s.enqueued_at ELSE clock_timestamp() END,
           errors = coalesce(s.errors, '[]'::jsonb) || jsonb_build_array(w.loss),
           error = CASE WHEN s.losses + 1 >= p_max_losses
                        THEN jsonb_build_object('class', 'WorkerLostError', 'permanent', true, 'kind', 'worker_lost', 'language', 'weft',
                               'backtrace', '[]'::jsonb,
                               'message', format('step %s lost its worker %s times: %s; it is not run again (the last worker, %s, '
                                                 || 'was running attempt %s). A handler that kills or hangs its process (os._exit, '
                                                 || 'a crash, running out of memory) does this: fix the handler, then retry the task',
                                                 s.name, s.losses + 1,
                                                 weft.loss_summary(coalesce(s.errors, '[]'::jsonb) || jsonb_build_array(w.loss), s.losses + 1),
                                                 coalesce(s.worker_id, '?'), s.attempts))
                        ELSE s.error END,
           finished_at = CASE WHEN s.losses + 1 >= p_max_losses THEN clock_timestamp() ELSE s.finished_at END,
           updated_at = clock_timestamp()
      FROM (SELECT x.id, weft.loss_entry(x.worker_id, x.attempts, p.exit) AS loss
              FROM weft.steps x LEFT JOIN weft.processes p ON p.id = x.worker_id
             WHERE x.id = ANY(v_ids)) AS w
     WHERE s.id = w.id AND s.id = ANY(v_ids) AND s.state = 'running'
       AND NOT EXISTS (SELECT 1 FROM weft.processes p
                        WHERE p.id = s.worker_id AND p.heartbeat_at > clock_timestamp() - v_lease)
    RETURNING s.id, s.task_id, s.seq, s.state, s.queue, s.name, s.attempts, s.losses, s.worker_id, s.error, w.loss->>'cause' AS cause),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'running', state, p_pid,
           jsonb_build_object('reason', 'worker lost', 'worker', worker_id, 'attempt', attempts, 'losses', losses, 'cause', cause) FROM lost),
  messages AS (
    INSERT INTO weft.outbox (queue, body)
    SELECT queue, jsonb_build_object('task_id', task_id, 'step_id', id) FROM lost WHERE state = 'enqueued' AND p_outbox
    RETURNING id, queue, body)
  SELECT coalesce(array_agg(CASE
           WHEN l.state = 'error'
             THEN ROW('finished', l.id, l.task_id, 'error', NULL, l.name, l.attempts, NULL, NULL, NULL, NULL)::weft.step_event
           WHEN p_outbox
             THEN ROW('outbox', l.id, l.task_id, 'enqueued', l.queue, l.name, l.attempts,
                      (SELECT jsonb_build_object('id', m.id, 'body', m.body) FROM messages m
                        WHERE (m.body->>'step_id')::uuid = l.id), NULL, NULL, NULL)::weft.step_event
           ELSE ROW('enqueued', l.id, l.task_id, 'enqueued', l.queue, l.name, l.attempts, NULL, NULL, NULL, NULL)::weft.step_event
         END), '{}'),
         jsonb_agg(jsonb_build_object('task', l.task_id, 'step', l.name, 'losses', l.losses, 'error', l.error))
           FILTER (WHERE l.state = 'error')
    INTO v_events, v_fail
    FROM lost l;
  RETURN QUERY SELECT * FROM unnest(v_events);
  FOR r IN SELECT x AS f FROM jsonb_array_elements(coalesce(v_fail, '[]'::jsonb)) AS x LOOP
    RETURN QUERY SELECT * FROM weft.fail_task((r.f->>'task')::uuid, r.f->>'step', 'worker lost ' || (r.f->>'losses') || ' times',
                                              r.f->'error', p_pid);
  END LOOP;
END $fn$;
