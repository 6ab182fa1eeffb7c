-- Cancel and retry (issues 9 and 10): an operator stops a task, or runs a
-- failed (or cancelled) task again from where it stopped. And release: a
-- worker gives back steps it cannot run (its runtime refused them) or never
-- started (a claim whose answer was lost), without using their retry budget.
--
-- Each is one statement and one commit, like the step boundary, and lock
-- rows in the order every finish locks them (src/store/finish.ts): running
-- steps by id, then the task's other steps by id, then the task. So a cancel
-- or retry that meets a worker finishing a step of the same task waits for
-- it instead of deadlocking with it.
--
-- Never edit this file once it has landed: add the next number instead.

-- A retry reopens a task that ended in error or was cancelled, and the steps
-- that failed or were cancelled: back to `enqueued` when their parents are
-- complete, `pending` otherwise.
INSERT INTO weft.task_transition_rules (from_state, to_state) VALUES
  ('error', 'running'), ('cancelled', 'running');
INSERT INTO weft.step_transition_rules (from_state, to_state) VALUES
  ('error', 'enqueued'), ('error', 'pending'), ('cancelled', 'enqueued'), ('cancelled', 'pending');
SELECT weft.compile_transition_rules();

-- Cancel a pending or running task. Its open steps (pending, enqueued,
-- waiting for a retry, running) become `cancelled`; a worker still running
-- one learns it from the `finished` event rows this returns (detail.worker,
-- which the caller notifies) and, failing that, from its finish being
-- refused (the fence requires state = 'running'). Raises WF404 for an unknown
-- task and WF409 for one that has ended, naming its state.
CREATE FUNCTION weft.cancel_task(p_task uuid, p_by text, p_pid text)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql AS $fn$
DECLARE
  v_state text;
BEGIN
  SELECT state INTO v_state FROM weft.tasks WHERE id = p_task;
  IF NOT FOUND THEN
    RAISE SQLSTATE 'WF404' USING MESSAGE = format('no task %s', p_task);
  END IF;
  IF v_state NOT IN ('pending', 'running') THEN
    RAISE SQLSTATE 'WF409' USING MESSAGE = format('task %s has already ended (%s); only a pending or running task can be cancelled', p_task, v_state);
  END IF;

  -- Running steps first, then the rest, each by id: a finish locks its
  -- running steps, then their children, then the task.
  PERFORM 1 FROM weft.steps WHERE task_id = p_task AND state = 'running' ORDER BY id FOR UPDATE;
  RETURN QUERY
  WITH doomed AS (
    SELECT id, state, worker_id FROM weft.steps
     WHERE task_id = p_task AND state IN ('pending', 'enqueued', 'waiting_retry', 'running') ORDER BY id FOR UPDATE),
  cancelled AS (
    UPDATE weft.steps s SET state = 'cancelled', seq = s.seq + 1, updated_at = clock_timestamp(),
           finished_at = CASE WHEN d.state = 'running' THEN clock_timestamp() END
      FROM doomed d WHERE s.id = d.id
    RETURNING s.id, s.task_id, s.seq, s.name, s.attempts, d.state AS from_state, d.worker_id),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, from_state, 'cancelled', p_pid, jsonb_build_object('reason', 'task cancelled', 'by', p_by)
      FROM cancelled),
  task AS (
    UPDATE weft.tasks SET state = 'cancelled', seq = seq + 1, updated_at = clock_timestamp(), completed_at = clock_timestamp(),
           error = jsonb_build_object('reason', 'cancelled', 'by', p_by)
     WHERE id = p_task AND state IN ('pending', 'running')
    RETURNING id, seq, state AS from_state, namespace, name, extract(epoch FROM completed_at - created_at) * 1000 AS ms),
  task_transition AS (
    INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id, metadata)
    SELECT id, seq, 'running', 'cancelled', p_pid, jsonb_build_object('by', p_by) FROM task)
  SELECT 'finished'::text, c.id, c.task_id, 'cancelled', NULL, c.name, c.attempts,
         jsonb_build_object('from', c.from_state, 'worker', c.worker_id), NULL, NULL,
         EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = c.task_id)
    FROM cancelled c
  UNION ALL
  SELECT 'task_ended', NULL::uuid, t.id, 'cancelled', NULL, NULL, NULL::int,
         jsonb_build_object('namespace', t.namespace, 'name', t.name, 'ms', t.ms), NULL, NULL, NULL::boolean
    FROM task t;
  -- The state was read without a lock: a task that ended in between is not cancelled.
  IF NOT EXISTS (SELECT 1 FROM weft.tasks WHERE id = p_task AND state = 'cancelled') THEN
    SELECT state INTO v_state FROM weft.tasks WHERE id = p_task;
    RAISE SQLSTATE 'WF409' USING MESSAGE = format('task %s has already ended (%s); only a pending or running task can be cancelled', p_task, v_state);
  END IF;
END $fn$;

-- Run a task that ended in error or was cancelled again from where it
-- stopped: every failed or cancelled step is reopened with a fresh retry
-- budget (failures and losses back to 0; attempt numbers go on, so a late
-- result of an earlier run stays fenced out), and the task runs again.
-- With p_step (a step name), that step must be one of them and the only
-- failed one: it is reopened with the cancelled steps (those its failure
-- stopped). Every earlier error stays in steps.errors. Raises WF404 for an
-- unknown task or step, WF409 when there is nothing to retry.
CREATE FUNCTION weft.retry_task(p_task uuid, p_step text, p_by text, p_pid text, p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql AS $fn$
DECLARE
  v_task    record;
  v_step    text;
  v_others  text;
  v_reopen  uuid[];
BEGIN
  SELECT id, state, namespace INTO v_task FROM weft.tasks WHERE id = p_task;
  IF NOT FOUND THEN
    RAISE SQLSTATE 'WF404' USING MESSAGE = format('no task %s', p_task);
  END IF;
  IF p_step IS NOT NULL AND NOT EXISTS (SELECT 1 FROM weft.steps WHERE task_id = p_task AND name = p_step) THEN
    RAISE SQLSTATE 'WF404' USING MESSAGE = format('task %s has no step %s', p_task, p_step);
  END IF;
  -- Lock order of a finish: running steps, then the others, then the task.
  PERFORM 1 FROM weft.steps WHERE task_id = p_task AND state = 'running' ORDER BY id FOR UPDATE;
  PERFORM 1 FROM weft.steps WHERE task_id = p_task ORDER BY id FOR UPDATE;
  SELECT id, state, namespace INTO v_task FROM weft.tasks WHERE id = p_task FOR UPDATE;
  IF v_task.state NOT IN ('error', 'cancelled') THEN
    RAISE SQLSTATE 'WF409' USING MESSAGE = format(
      'task %s is %s; only a task that ended in error or was cancelled can be retried', p_task, v_task.state);
  END IF;

  IF p_step IS NULL THEN
    SELECT array_agg(id) INTO v_reopen FROM weft.steps WHERE task_id = p_task AND state IN ('error', 'cancelled');
  ELSE
    SELECT state INTO v_step FROM weft.steps WHERE task_id = p_task AND name = p_step;
    IF NOT FOUND THEN
      RAISE SQLSTATE 'WF404' USING MESSAGE = format('task %s has no step %s', p_task, p_step);
    END IF;
    IF v_step NOT IN ('error', 'cancelled') THEN
      RAISE SQLSTATE 'WF409' USING MESSAGE = format(
        'step %s of task %s is %s; only a failed or cancelled step can be retried', p_step, p_task, v_step);
    END IF;
    SELECT string_agg(name, ', ' ORDER BY name) INTO v_others
      FROM weft.steps WHERE task_id = p_task AND state = 'error' AND name <> p_step;
    IF v_others IS NOT NULL THEN
      RAISE SQLSTATE 'WF409' USING MESSAGE = format(
        'task %s has other failed steps (%s); retry the whole task to run them all again', p_task, v_others);
    END IF;
    SELECT array_agg(id) INTO v_reopen FROM weft.steps
     WHERE task_id = p_task AND (name = p_step OR state = 'cancelled');
  END IF;
  IF v_reopen IS NULL THEN
    RAISE SQLSTATE 'WF409' USING MESSAGE = format('task %s has no failed or cancelled step to retry', p_task);
  END IF;

  RETURN QUERY
  WITH reopened AS (
    UPDATE weft.steps s
       SET pending_parents = p.n,
           state = CASE WHEN p.n = 0 THEN 'enqueued' ELSE 'pending' END,
           seq = s.seq + 1, updated_at = clock_timestamp(),
           queue = 'step.' || v_task.namespace || '.' || s.runtime,
           enqueued_at = CASE WHEN p.n = 0 THEN clock_timestamp() END,
           failures = 0, losses = 0, error = NULL, result = NULL, run_after = NULL,
           worker_id = NULL, started_at = NULL, finished_at = NULL
      FROM (SELECT x.id, x.state AS from_state,
                   (SELECT count(*) FROM weft.step_edges e JOIN weft.steps pa ON pa.id = e.from_step
                     WHERE e.to_step = x.id AND pa.state <> 'complete')::int AS n
              FROM weft.steps x WHERE x.id = ANY(v_reopen)) p
     WHERE s.id = p.id
    RETURNING s.id, s.task_id, s.seq, s.name, s.queue, s.state, p.from_state),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, from_state, state, p_pid, jsonb_build_object('reason', 'retried', 'by', p_by) FROM reopened),
  messages AS (
    INSERT INTO weft.outbox (queue, body)
    SELECT r.queue, jsonb_build_object('task_id', r.task_id, 'step_id', r.id) FROM reopened r
     WHERE r.state = 'enqueued' AND p_outbox
    RETURNING id, queue, body)
  SELECT 'enqueued'::text, r.id, r.task_id, 'enqueued', r.queue, r.name, NULL::int, NULL::jsonb, NULL::text, NULL::text,
         EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = r.task_id)
    FROM reopened r WHERE r.state = 'enqueued' AND NOT p_outbox
  UNION ALL
  SELECT 'outbox', (m.body->>'step_id')::uuid, (m.body->>'task_id')::uuid, 'enqueued', m.queue, NULL, NULL,
         jsonb_build_object('id', m.id, 'body', m.body), NULL, NULL, NULL
    FROM messages m;

  WITH task AS (
    UPDATE weft.tasks t SET state = 'running', seq = t.seq + 1, updated_at = clock_timestamp(), completed_at = NULL, error = NULL,
           open_steps = (SELECT count(*) FROM weft.steps s WHERE s.task_id = p_task AND s.state <> 'complete')
     WHERE t.id = p_task
    RETURNING t.id, t.seq)
  INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id, metadata)
  SELECT id, seq, v_task.state, 'running', p_pid, jsonb_build_object('reason', 'retried', 'by', p_by, 'step', p_step) FROM task;
END $fn$;

-- A worker gives steps it holds back without running them, and without using
-- their retry budget (failures and losses stay as they are):
--   * its runtime refused them (the circuit breaker is open, the call queue
--     is full): p_delay_ms later, for this or another worker;
--   * it finds steps claimed in its name that it never started (the answer
--     of the claim was lost with its connection): at once.
-- Each item is fenced like a finish (running, this worker, that attempt). A
-- step whose task has ended meanwhile is cancelled instead. Returns a
-- `finished` row per step given back (state waiting_retry, enqueued or
-- cancelled) and the dispatch rows of those enqueued.
CREATE FUNCTION weft.release_steps(p_worker text, p_ids uuid[], p_attempts integer[], p_delay_ms integer, p_reason text,
                                   p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY
  WITH items AS (
    SELECT x.id, x.attempt FROM unnest(p_ids, p_attempts) AS x(id, attempt) ORDER BY x.id),
  released AS (
    UPDATE weft.steps s
       SET state = CASE WHEN t.state NOT IN ('pending', 'running') THEN 'cancelled'
                        WHEN p_delay_ms > 0 THEN 'waiting_retry' ELSE 'enqueued' END,
           seq = s.seq + 1, updated_at = clock_timestamp(),
           run_after = CASE WHEN t.state IN ('pending', 'running') AND p_delay_ms > 0
                            THEN clock_timestamp() + make_interval(secs => p_delay_ms / 1000.0) END,
           enqueued_at = CASE WHEN t.state IN ('pending', 'running') AND p_delay_ms <= 0 THEN clock_timestamp() ELSE s.enqueued_at END,
           finished_at = CASE WHEN t.state NOT IN ('pending', 'running') THEN clock_timestamp() END
      FROM items i, weft.tasks t
     WHERE s.id = i.id AND t.id = s.task_id AND s.state = 'running'
       AND s.attempts = i.attempt AND s.worker_id IS NOT DISTINCT FROM p_worker AND s.finished_at IS NULL
    RETURNING s.id, s.task_id, s.seq, s.state, s.queue, s.name, s.attempts, s.run_after),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'running', state, p_worker,
           jsonb_build_object('reason', p_reason, 'attempt', attempts, 'delay_ms', p_delay_ms) FROM released),
  messages AS (
    INSERT INTO weft.outbox (queue, body)
    SELECT queue, jsonb_build_object('task_id', task_id, 'step_id', id) FROM released WHERE state = 'enqueued' AND p_outbox
    RETURNING id, queue, body)
  SELECT 'finished'::text, r.id, r.task_id, r.state, NULL, r.name, r.attempts,
         jsonb_strip_nulls(jsonb_build_object('run_after', r.run_after)), NULL::text, NULL::text,
         EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = r.task_id)
    FROM released r
  UNION ALL
  SELECT 'enqueued', r.id, r.task_id, 'enqueued', r.queue, r.name, NULL::int, NULL::jsonb, NULL, NULL,
         EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = r.task_id)
    FROM released r WHERE r.state = 'enqueued' AND NOT p_outbox
  UNION ALL
  SELECT 'outbox', (m.body->>'step_id')::uuid, (m.body->>'task_id')::uuid, 'enqueued', m.queue, NULL, NULL,
         jsonb_build_object('id', m.id, 'body', m.body), NULL, NULL, NULL
    FROM messages m;
END $fn$;

-- Steps running in p_worker's name for longer than p_older_ms: the worker
-- compares them with what it really runs (see weft.release_steps).
CREATE FUNCTION weft.running_steps_of(p_worker text, p_older_ms integer)
RETURNS TABLE (id uuid, attempt integer)
LANGUAGE plpgsql STABLE SET enable_seqscan = off SET enable_bitmapscan = off AS $fn$
BEGIN
  RETURN QUERY
  SELECT s.id, s.attempts FROM weft.steps s
   WHERE s.state = 'running' AND s.worker_id = p_worker
     AND s.started_at < clock_timestamp() - make_interval(secs => p_older_ms / 1000.0);
END $fn$;
