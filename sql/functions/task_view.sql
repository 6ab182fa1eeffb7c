-- A task and every step with state, attempts, result, error and timings, as
-- the JSON text the API answers as is (no parse and no serialisation in the
-- orchestrator); times are ISO 8601 strings. NULL for an unknown task.
--
-- A function, with the step boundary's planner settings, and not a prepared
-- statement: a connection plans a prepared statement once and keeps the plan,
-- and one planned while the tables were small (every fresh database, and any
-- server whose statistics are stale: autovacuum off) read weft.tasks and
-- weft.steps whole to answer for one task, at every long-poll's answer,
-- however large the tables grew. Here every row is found by its key.
CREATE OR REPLACE FUNCTION weft.task_view(p_task uuid, p_with_context boolean) RETURNS text
LANGUAGE plpgsql STABLE SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_view text;
BEGIN
  SELECT json_build_object(
           'id', t.id, 'namespace', t.namespace, 'name', t.name, 'version', t.version, 'state', t.state,
           'ended', t.state IN ('complete', 'error', 'cancelled'),
           'context', CASE WHEN p_with_context THEN t.context END, 'idempotency_key', t.idempotency_key, 'error', t.error,
           'run_at', t.run_at, 'created_at', t.created_at, 'updated_at', t.updated_at, 'completed_at', t.completed_at,
           'parent', (SELECT json_build_object('task_id', pt.id, 'step', ps.name, 'namespace', pt.namespace, 'name', pt.name)
                        FROM weft.steps ps JOIN weft.tasks pt ON pt.id = ps.task_id WHERE ps.id = t.parent_step_id),
           'duration_ms', round((extract(epoch FROM t.completed_at - t.created_at) * 1000)::numeric, 3),
           'steps', (SELECT coalesce(json_agg(json_build_object(
                'id', s.id, 'name', s.name, 'template_step', s.template_step, 'type', s.type, 'runtime', s.runtime,
                'handler', s.handler, 'state', s.state, 'attempts', s.attempts, 'max_attempts', s.max_attempts,
                'failures', s.failures, 'losses', s.losses, 'worker_id', s.worker_id, 'queue', s.queue,
                'parents', (SELECT coalesce(json_agg(p.name ORDER BY p.name), '[]') FROM weft.step_edges e
                            JOIN weft.steps p ON p.id = e.from_step WHERE e.to_step = s.id),
                'result', s.result, 'error', s.error, 'errors', coalesce(s.errors, '[]'::jsonb), 'batch', s.batch,
                'wait', s.wait, 'callback_path', '/v1/callbacks/' || s.signal_token, 'child_task_id', s.child_task_id,
                'run_after', s.run_after, 'created_at', s.created_at, 'enqueued_at', s.enqueued_at,
                'started_at', s.started_at, 'finished_at', s.finished_at,
                'duration_ms', round((extract(epoch FROM s.finished_at - s.started_at) * 1000)::numeric, 3))
                ORDER BY s.created_at, s.name), '[]')
             FROM weft.steps s WHERE s.task_id = t.id))::text INTO v_view
    FROM weft.tasks t WHERE t.id = p_task;
  RETURN v_view;
END $fn$;

-- A task's state, NULL for an unknown task (a waiter's check). A function for
-- the same reason as weft.task_view: a prepared `WHERE id = $1` planned on a
-- one-page table reads the table whole for as long as its connection lives.
CREATE OR REPLACE FUNCTION weft.task_state(p_task uuid) RETURNS text
LANGUAGE plpgsql STABLE SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
BEGIN
  RETURN (SELECT state FROM weft.tasks WHERE id = p_task);
END $fn$;
