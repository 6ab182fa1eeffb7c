-- Run a task that ended in error or was cancelled again from where it
-- stopped (a sleep or wait step whose parents are complete waits again, from now): every failed or cancelled step is reopened with a fresh retry
-- budget (failures and losses back to 0; attempt numbers go on, so a late
-- result of an earlier run stays fenced out), and the task runs again.
-- With p_step (a step name), that step must be one of them and the only
-- failed one: it is reopened with the cancelled steps (those its failure
-- stopped). Every earlier error stays in steps.errors. Raises WF404 for an
-- unknown task or step, WF409 when there is nothing to retry.
-- The task's running steps are locked with `running` in a variable, never a
-- literal, which would let the planner walk steps_running (every running
-- step) instead of the task's steps (see weft.claim_steps).
-- requires: event_row, wait_deadline
CREATE OR REPLACE FUNCTION weft.retry_task(p_task uuid, p_step text, p_by text, p_pid text, p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_task    record;
  v_step    text;
  v_others  text;
  v_reopen  uuid[];
  v_running CONSTANT text := 'running';
BEGIN
  SELECT id, state, namespace INTO v_task FROM weft.tasks WHERE id = p_task;
  IF NOT FOUND THEN
    RAISE SQLSTATE 'WF404' USING MESSAGE = format('no task %s', p_task);
  END IF;
  IF p_step IS NOT NULL AND NOT EXISTS (SELECT 1 FROM weft.steps WHERE task_id = p_task AND name = p_step) THEN
    RAISE SQLSTATE 'WF404' USING MESSAGE = format('task %s has no step %s', p_task, p_step);
  END IF;
  -- Lock order of a finish: running steps, then the others, then the task.
  PERFORM 1 FROM weft.steps WHERE task_id = p_task AND state = v_running ORDER BY id FOR UPDATE;
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
           state = CASE WHEN p.n > 0 THEN 'pending' WHEN s.wait IS NOT NULL THEN 'waiting' ELSE 'enqueued' END,
           seq = s.seq + 1, updated_at = clock_timestamp(),
           queue = 'step.' || v_task.namespace || '.' || s.runtime,
           enqueued_at = CASE WHEN p.n = 0 AND s.wait IS NULL THEN clock_timestamp() END,
           failures = 0, losses = 0, error = NULL, result = NULL,
           run_after = CASE WHEN p.n = 0 AND s.wait IS NOT NULL THEN weft.wait_deadline(s.wait) END,
           wait = s.wait - 'until_read',
           child_task_id = NULL,
           worker_id = NULL, started_at = NULL, finished_at = NULL
      FROM (SELECT x.id, x.state AS from_state,
                   (SELECT count(*) FROM weft.step_edges e JOIN weft.steps pa ON pa.id = e.from_step
                     WHERE e.to_step = x.id AND pa.state <> 'complete')::int AS n
              FROM weft.steps x WHERE x.id = ANY(v_reopen)) p
     WHERE s.id = p.id
    RETURNING s.id, s.task_id, s.seq, s.name, s.queue, s.state, s.type, s.attempts, s.run_after, p.from_state),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, from_state, state, p_pid, jsonb_build_object('reason', 'retried', 'by', p_by) FROM reopened)
  SELECT * FROM weft.dispatch_ready(ARRAY(
    SELECT weft.enqueued_event(r.id, r.task_id, r.queue, r.name, NULL, EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = r.task_id))
      FROM reopened r WHERE r.state = 'enqueued'), p_outbox)
  UNION ALL
  SELECT (weft.waiting_event(r.id, r.task_id, r.name, r.type, r.attempts, r.run_after,
                             EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = r.task_id))).*
    FROM reopened r WHERE r.state = 'waiting';

  WITH task AS (
    UPDATE weft.tasks t SET state = 'running', seq = t.seq + 1, updated_at = clock_timestamp(), completed_at = NULL, error = NULL,
           open_steps = (SELECT count(*) FROM weft.steps s WHERE s.task_id = p_task AND s.state <> 'complete')
     WHERE t.id = p_task
    RETURNING t.id, t.seq)
  INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id, metadata)
  SELECT id, seq, v_task.state, 'running', p_pid, jsonb_build_object('reason', 'retried', 'by', p_by, 'step', p_step) FROM task;
END $fn$;
