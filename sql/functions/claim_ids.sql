-- Claim these steps (RabbitMQ deliveries name them) for p_worker; a step that
-- is not `enqueued` any more is skipped (a duplicate or stale message).
CREATE OR REPLACE FUNCTION weft.claim_ids(p_worker text, p_ids uuid[]) RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_ids uuid[];
BEGIN
  WITH picked AS (
    SELECT id FROM weft.steps WHERE id = ANY(p_ids) AND state = 'enqueued' FOR UPDATE SKIP LOCKED),
  claimed AS (
    UPDATE weft.steps s
       SET state = 'running', seq = s.seq + 1, attempts = s.attempts + 1, worker_id = p_worker,
           started_at = clock_timestamp(), finished_at = NULL, updated_at = clock_timestamp()
      FROM picked
     WHERE s.id = picked.id AND s.state = 'enqueued'
    RETURNING s.id, s.task_id, s.seq, s.attempts),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'enqueued', 'running', p_worker, jsonb_build_object('attempt', attempts) FROM claimed)
  SELECT array_agg(id) INTO v_ids FROM claimed;
  IF v_ids IS NOT NULL THEN
    RETURN QUERY SELECT * FROM weft.claimed_events(v_ids);
  END IF;
END $fn$;
