-- Claim for p_worker those of p_ids that are still `enqueued` (a step another
-- claim holds locked is skipped, not waited for): enqueued → running with the
-- next attempt number, and its transition. Returns the ids claimed, for
-- weft.claimed_events. Every claim of a ready step goes through here:
-- weft.claim_queued and weft.finish_steps (after weft.pick_queued) and
-- weft.claim_ids (RabbitMQ deliveries). (A child claimed on release, inside
-- weft.finish_steps, goes pending → running in the statement that counts its
-- parents down, and stays there.)
--
-- Steps are found by id (steps_pkey), and their state is compared with a
-- variable, never a literal. With `state = 'enqueued'` written out, the
-- planner may read them through the steps_ready partial index instead (every
-- ready step of every queue, filtered by id), and does when the table's
-- statistics are stale (autovacuum off, or a backlog that arrived after the
-- last ANALYZE): a claim of 32 steps behind a backlog of 10,000 took 15 ms
-- instead of 0.3. A generic plan (force_generic_plan) cannot prove a partial
-- index's predicate from a parameter, so it cannot make that choice. The
-- UPDATE takes the locked ids as an array, not as a join: a join lets a
-- planner that believes the table is tiny walk all of steps_pkey once per
-- claim (seen: 1,936 rows walked for 32 claimed).
CREATE OR REPLACE FUNCTION weft.claim_steps(p_worker text, p_ids uuid[]) RETURNS uuid[]
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_ids      uuid[];
  v_enqueued CONSTANT text := 'enqueued';
BEGIN
  IF p_ids IS NULL OR cardinality(p_ids) = 0 THEN
    RETURN NULL;
  END IF;
  WITH picked AS (
    SELECT id FROM weft.steps WHERE id = ANY(p_ids) AND state = v_enqueued FOR UPDATE SKIP LOCKED),
  claimed AS (
    UPDATE weft.steps s
       SET state = 'running', seq = s.seq + 1, attempts = s.attempts + 1, worker_id = p_worker,
           started_at = clock_timestamp(), finished_at = NULL, updated_at = clock_timestamp()
     WHERE s.id = ANY(ARRAY(SELECT id FROM picked)) AND s.state = v_enqueued
    RETURNING s.id, s.task_id, s.seq, s.attempts),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'enqueued', 'running', p_worker, jsonb_build_object('attempt', attempts) FROM claimed)
  SELECT array_agg(id) INTO v_ids FROM claimed;
  RETURN v_ids;
END $fn$;
