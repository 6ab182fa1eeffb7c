-- End a running task in error because `p_step` failed for good: every step
-- not started yet is cancelled (a waiting sleep, wait or workflow step too,
-- and a workflow step's child task with it: weft.cancel_children); running
-- ones finish and are recorded, but nothing new is dispatched. Steps are
-- locked in id order, then the task (the order of every writer, see
-- weft.finish_steps).
-- The task is found by id, its state compared with variables: the literals
-- ('pending', 'running') would match the predicate of the tasks_active
-- partial index, which the planner may then walk instead of tasks_pkey (see
-- weft.claim_steps).
-- requires: event_row, cancel_task
CREATE OR REPLACE FUNCTION weft.fail_task(p_task uuid, p_step text, p_reason text, p_error jsonb, p_pid text)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_pending CONSTANT text := 'pending';
  v_running CONSTANT text := 'running';
BEGIN
  RETURN QUERY
  WITH doomed AS (
    SELECT id, state FROM weft.steps
     WHERE task_id = p_task AND state IN ('pending', 'enqueued', 'waiting_retry', 'waiting') ORDER BY id FOR UPDATE),
  cancelled AS (
    UPDATE weft.steps s SET state = 'cancelled', seq = s.seq + 1, updated_at = clock_timestamp()
      FROM doomed d WHERE s.id = d.id
    RETURNING s.id, s.task_id, s.seq, d.state AS from_state),
  cancelled_transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, from_state, 'cancelled', p_pid, '{"reason":"task failed"}'::jsonb FROM cancelled),
  task AS (
    UPDATE weft.tasks SET state = 'error', seq = seq + 1, updated_at = clock_timestamp(), completed_at = clock_timestamp(),
           error = jsonb_build_object('step', p_step, 'reason', p_reason, 'error', p_error)
     WHERE id = p_task AND state IN (v_pending, v_running)
    RETURNING id, seq, namespace, name, extract(epoch FROM completed_at - created_at) * 1000 AS ms, parent_step_id),
  task_transition AS (
    INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id, metadata)
    SELECT id, seq, 'running', 'error', p_pid, jsonb_build_object('step', p_step, 'reason', p_reason) FROM task)
  SELECT (weft.task_ended_event(t.id, 'error', t.namespace, t.name, t.ms, t.parent_step_id)).* FROM task t;
  RETURN QUERY SELECT * FROM weft.cancel_children(p_task, 'weft', p_pid);
END $fn$;
