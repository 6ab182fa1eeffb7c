-- A task, its transitions, its initial steps and edges, and the dispatch of
-- the ready ones: one round trip, one commit. Raises foreign_key_violation
-- for an unregistered template version and unique_violation
-- (tasks_idempotency_key_key) for a repeated idempotency key.
CREATE OR REPLACE FUNCTION weft.create_task(p_task uuid, p_namespace text, p_name text, p_version text, p_context jsonb,
                                 p_idempotency_key text, p_steps jsonb, p_edges jsonb, p_pid text, p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
BEGIN
  PERFORM 1 FROM weft.templates WHERE namespace = p_namespace AND name = p_name AND version = p_version;
  IF NOT FOUND THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('no template %s/%s@%s is registered', p_namespace, p_name, p_version),
      HINT = 'register it first (weft orchestrator --templates DIR, or POST /v1/templates)';
  END IF;
  INSERT INTO weft.tasks (id, namespace, name, version, state, seq, context, idempotency_key, open_steps)
  VALUES (p_task, p_namespace, p_name, p_version, 'running', 2, p_context, p_idempotency_key, jsonb_array_length(p_steps));
  INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id)
  VALUES (p_task, 1, NULL, 'pending', p_pid), (p_task, 2, 'pending', 'running', p_pid);
  RETURN QUERY SELECT * FROM weft.insert_steps(p_task, p_namespace, p_steps, p_edges, p_pid, p_outbox);
END $fn$;
