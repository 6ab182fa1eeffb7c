-- weft.create_task, and in the same statement the claim of its ready steps
-- for a worker of the creating process (`weft run`, an orchestrator and
-- workers in one process, on the PostgreSQL queue): up to p_limit of the
-- steps it enqueued on p_queues go enqueued → running for p_worker (their
-- transitions as any claim's), and come back as `claimed` events with what
-- their handlers need; the others come back as create_task returned them.
-- A task's start then costs one commit instead of two (the create's and the
-- worker's claim) and no wake-up. Only without an outbox: a broker's steps
-- are claimed from its deliveries.
CREATE OR REPLACE FUNCTION weft.create_task_claiming(p_worker text, p_queues text[], p_limit integer,
                                 p_task uuid, p_namespace text, p_name text, p_version text, p_context jsonb,
                                 p_idempotency_key text, p_steps jsonb, p_edges jsonb, p_pid text,
                                 p_run_at timestamptz DEFAULT NULL)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_events weft.step_event[];
  v_ids    uuid[];
BEGIN
  SELECT array_agg(e) INTO v_events
    FROM weft.create_task(p_task, p_namespace, p_name, p_version, p_context, p_idempotency_key, p_steps, p_edges,
                          p_pid, false, p_run_at) AS e;
  IF p_limit > 0 THEN
    v_ids := weft.claim_steps(p_worker, ARRAY(
      SELECT e.step_id FROM unnest(v_events) AS e
       WHERE e.kind = 'enqueued' AND e.queue = ANY(p_queues) LIMIT p_limit));
  END IF;
  RETURN QUERY SELECT * FROM unnest(v_events) AS e
                WHERE v_ids IS NULL OR e.kind <> 'enqueued' OR NOT e.step_id = ANY(v_ids);
  IF v_ids IS NOT NULL THEN
    RETURN QUERY SELECT * FROM weft.claimed_events(v_ids);
  END IF;
END $fn$;
