-- Delayed starts whose time has come (tasks_start_due), up to p_limit: each
-- task pending → running, and its root steps released: `enqueued` (and
-- dispatched), or `waiting` for a sleep, wait or workflow step (a `waiting`
-- event, for live watchers and, for a workflow step, the orchestrators that
-- start its child; every event says whether someone watches its task). Locks in a finish's
-- order (steps by id, then the task), like weft.cancel_task, which may meet
-- it; a task another orchestrator started (or a cancel ended) meanwhile is
-- left alone.
-- The due tasks are picked through tasks_start_due (that literal is meant);
-- the UPDATE finds them again by id and re-checks `pending` with a variable:
-- the literal would match the predicate of tasks_active, which the planner
-- may then walk instead of tasks_pkey (see weft.claim_steps).
-- requires: event_row, wait_deadline
CREATE OR REPLACE FUNCTION weft.start_due_tasks(p_pid text, p_outbox boolean, p_limit integer)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_due     uuid[];
  v_started uuid[];
  v_pending CONSTANT text := 'pending';
BEGIN
  SELECT array_agg(id ORDER BY id) INTO v_due FROM (
    SELECT id FROM weft.tasks WHERE state = 'pending' AND run_at <= clock_timestamp() ORDER BY run_at LIMIT p_limit) d;
  IF v_due IS NULL THEN
    RETURN;
  END IF;
  PERFORM 1 FROM weft.steps WHERE task_id = ANY(v_due) ORDER BY id FOR UPDATE;
  WITH started AS (
    UPDATE weft.tasks t SET state = 'running', seq = t.seq + 1, updated_at = clock_timestamp()
     WHERE t.id = ANY(v_due) AND t.state = v_pending
    RETURNING t.id, t.seq, t.run_at),
  transitions AS (
    INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id, metadata)
    SELECT id, seq, 'pending', 'running', p_pid, jsonb_build_object('reason', 'start time reached', 'run_at', run_at) FROM started)
  SELECT array_agg(id) INTO v_started FROM started;
  IF v_started IS NULL THEN
    RETURN;
  END IF;

  RETURN QUERY
  WITH released AS (
    UPDATE weft.steps s
       SET state = CASE WHEN s.wait IS NOT NULL THEN 'waiting' ELSE 'enqueued' END,
           seq = s.seq + 1,
           enqueued_at = CASE WHEN s.wait IS NULL THEN clock_timestamp() END,
           run_after = CASE WHEN s.wait IS NOT NULL THEN weft.wait_deadline(s.wait) END,
           updated_at = clock_timestamp()
     WHERE s.task_id = ANY(v_started) AND s.state = 'pending' AND s.pending_parents = 0
    RETURNING s.id, s.task_id, s.seq, s.state, s.queue, s.name, s.type, s.run_after, s.attempts,
              EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = s.task_id) AS watched),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'pending', state, p_pid,
           jsonb_strip_nulls(jsonb_build_object('reason', 'task start time reached', 'until', run_after)) FROM released)
  SELECT * FROM weft.dispatch_ready(ARRAY(SELECT weft.enqueued_event(r.id, r.task_id, r.queue, r.name, NULL, r.watched)
                                            FROM released r WHERE r.state = 'enqueued'), p_outbox)
  UNION ALL
  SELECT (weft.waiting_event(r.id, r.task_id, r.name, r.type, r.attempts, r.run_after, r.watched)).* FROM released r WHERE r.state = 'waiting';
END $fn$;
