-- Cancel a pending or running task. Its open steps (pending, enqueued,
-- waiting for a retry, waiting (sleep, wait), running) become `cancelled`; a worker still running
-- one learns it from the `finished` event rows this returns (detail.worker,
-- which the caller notifies) and, failing that, from its finish being
-- refused (the fence requires state = 'running'). Raises WF404 for an unknown
-- task and WF409 for one that has ended, naming its state.
-- p_reason (may be NULL) is the operator's why: kept beside `by` in the task's
-- audit row (task_transitions.metadata.reason) and as the task error's message.
-- Its child workflows still open are cancelled with it (weft.cancel_children),
-- and theirs in turn; their rows are returned too.
-- Rows are found by the task's id, and the states that a partial index is
-- defined by are compared with variables, never literals: `state = 'running'`
-- would let the planner walk steps_running (every running step) instead of
-- the task's steps, and `state IN ('pending', 'running')` tasks_active
-- instead of tasks_pkey (see weft.claim_steps).
-- requires: event_row
CREATE OR REPLACE FUNCTION weft.cancel_task(p_task uuid, p_by text, p_pid text, p_reason text)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_state   text;
  v_pending CONSTANT text := 'pending';
  v_running CONSTANT text := 'running';
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
  PERFORM 1 FROM weft.steps WHERE task_id = p_task AND state = v_running ORDER BY id FOR UPDATE;
  RETURN QUERY
  WITH doomed AS (
    SELECT id, state, worker_id FROM weft.steps
     WHERE task_id = p_task AND state IN ('pending', 'enqueued', 'waiting_retry', 'waiting', 'running') ORDER BY id FOR UPDATE),
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
           error = jsonb_strip_nulls(jsonb_build_object('reason', 'cancelled', 'by', p_by, 'message', p_reason))
     WHERE id = p_task AND state IN (v_pending, v_running)
    RETURNING id, seq, state AS from_state, namespace, name, extract(epoch FROM completed_at - created_at) * 1000 AS ms, parent_step_id),
  task_transition AS (
    INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id, metadata)
    SELECT id, seq, 'running', 'cancelled', p_pid, jsonb_strip_nulls(jsonb_build_object('by', p_by, 'reason', p_reason)) FROM task)
  SELECT (weft.finished_event(c.id, c.task_id, 'cancelled', c.name, c.attempts, jsonb_build_object('from', c.from_state, 'worker', c.worker_id),
                              EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = c.task_id))).*
    FROM cancelled c
  UNION ALL
  SELECT (weft.task_ended_event(t.id, 'cancelled', t.namespace, t.name, t.ms, t.parent_step_id)).* FROM task t;
  -- The state was read without a lock: a task that ended in between is not cancelled.
  IF NOT EXISTS (SELECT 1 FROM weft.tasks WHERE id = p_task AND state = 'cancelled') THEN
    SELECT state INTO v_state FROM weft.tasks WHERE id = p_task;
    RAISE SQLSTATE 'WF409' USING MESSAGE = format('task %s has already ended (%s); only a pending or running task can be cancelled', p_task, v_state);
  END IF;
  RETURN QUERY SELECT * FROM weft.cancel_children(p_task, p_by, p_pid);
END $fn$;

-- Cancel the open child tasks of p_task's workflow steps (steps.child_task_id),
-- each through weft.cancel_task (so their own children follow), with the
-- reason that their parent was cancelled or failed. A child that ended
-- meanwhile is left as it ended. Called after p_task's steps were cancelled,
-- so no child's end can complete its parent step any more. (Variables for
-- the states, as in weft.cancel_task: every fail_task runs this, and a
-- child's task is found by id, never by walking tasks_active.)
CREATE OR REPLACE FUNCTION weft.cancel_children(p_task uuid, p_by text, p_pid text)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_child   record;
  v_pending CONSTANT text := 'pending';
  v_running CONSTANT text := 'running';
BEGIN
  FOR v_child IN
    SELECT c.id, s.name FROM weft.steps s JOIN weft.tasks c ON c.id = s.child_task_id
     WHERE s.task_id = p_task AND s.child_task_id IS NOT NULL AND c.state IN (v_pending, v_running)
     ORDER BY c.id
  LOOP
    BEGIN
      RETURN QUERY SELECT * FROM weft.cancel_task(v_child.id, p_by, p_pid,
                                                  format('its parent task %s ended (step %s)', p_task, v_child.name));
    EXCEPTION WHEN SQLSTATE 'WF409' THEN
      NULL;
    END;
  END LOOP;
END $fn$;
