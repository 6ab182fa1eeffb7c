-- A task, its transitions, its initial steps and edges, and the dispatch of
-- the ready ones: one round trip, one commit. Raises foreign_key_violation
-- for an unregistered template version and unique_violation
-- (tasks_idempotency_key_key) for a repeated idempotency key.
-- With p_run_at in the future (a delayed start) the task and all its steps
-- stay `pending` and nothing is dispatched: weft.start_due_tasks starts it then.
CREATE OR REPLACE FUNCTION weft.create_task(p_task uuid, p_namespace text, p_name text, p_version text, p_context jsonb,
                                 p_idempotency_key text, p_steps jsonb, p_edges jsonb, p_pid text, p_outbox boolean,
                                 p_run_at timestamptz DEFAULT NULL)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_hold boolean := p_run_at IS NOT NULL AND p_run_at > clock_timestamp();
BEGIN
  PERFORM 1 FROM weft.templates WHERE namespace = p_namespace AND name = p_name AND version = p_version;
  IF NOT FOUND THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('no template %s/%s@%s is registered', p_namespace, p_name, p_version),
      HINT = 'register it first (weft orchestrator --templates DIR, or POST /v1/templates)';
  END IF;
  INSERT INTO weft.tasks (id, namespace, name, version, state, seq, context, idempotency_key, open_steps, run_at)
  VALUES (p_task, p_namespace, p_name, p_version, CASE WHEN v_hold THEN 'pending' ELSE 'running' END, CASE WHEN v_hold THEN 1 ELSE 2 END,
          p_context, p_idempotency_key, jsonb_array_length(p_steps), p_run_at);
  INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id, metadata)
  VALUES (p_task, 1, NULL, 'pending', p_pid, CASE WHEN p_run_at IS NOT NULL THEN jsonb_build_object('run_at', p_run_at) END);
  IF NOT v_hold THEN
    INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id) VALUES (p_task, 2, 'pending', 'running', p_pid);
  END IF;
  RETURN QUERY SELECT * FROM weft.insert_steps(p_task, p_namespace, p_steps, p_edges, p_pid, p_outbox, v_hold);
END $fn$;
