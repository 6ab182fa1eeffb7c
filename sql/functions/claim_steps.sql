-- Claim for p_worker those of p_ids that are still `enqueued` (a step another
-- claim holds locked is skipped, not waited for): enqueued → running with the
-- next attempt number, and its transition. Returns the ids claimed, for
-- weft.claimed_events. Every claim of a ready step goes through here:
-- weft.claim_queued and weft.finish_steps (after weft.pick_queued) and
-- weft.claim_ids (RabbitMQ deliveries). (A child claimed on release, inside
-- weft.finish_steps, goes pending → running in the statement that counts its
-- parents down, and stays there.)
CREATE OR REPLACE FUNCTION weft.claim_steps(p_worker text, p_ids uuid[]) RETURNS uuid[]
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_ids uuid[];
BEGIN
  IF p_ids IS NULL OR cardinality(p_ids) = 0 THEN
    RETURN NULL;
  END IF;
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
  RETURN v_ids;
END $fn$;
