-- Finish `waiting` steps without a worker: the orchestrator (a sleep's time
-- came, a wait timed out) or the API (a signal arrived) takes each step, as
-- process p_pid (waiting → running, with p_why's item in the audit row), and
-- hands the outcomes to weft.finish_steps, so the step completes or fails, its
-- children are released and its task ends in the same statement, exactly as
-- when a worker finishes a step. The caller holds the steps' rows (FOR UPDATE).
--   p_items  [{id, result} | {id, error, reason}, with why: {reason, by, ...}]
-- Steps no longer waiting are left alone (a signal and a timeout that meet:
-- the first to commit wins).
-- The steps are found by id: the UPDATE takes the items' ids as an array
-- (joined to the items only, a planner may walk all of steps_pkey instead),
-- and compares `waiting` with a variable, never a literal, which would let it
-- read them through the steps_wait_due partial index (see weft.claim_steps).
-- requires: finish_steps
CREATE OR REPLACE FUNCTION weft.complete_waiting(p_items jsonb, p_pid text, p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_ids       uuid[];
  v_successes jsonb;
  v_failures  jsonb;
  v_waiting   CONSTANT text := 'waiting';
BEGIN
  WITH items AS (
    SELECT * FROM jsonb_to_recordset(p_items) AS i(id uuid, result jsonb, error jsonb, reason text, why jsonb)),
  taken AS (
    UPDATE weft.steps s
       SET state = 'running', seq = s.seq + 1, attempts = s.attempts + 1, worker_id = p_pid,
           started_at = clock_timestamp(), finished_at = NULL, run_after = NULL, updated_at = clock_timestamp()
      FROM items i
     WHERE s.id = ANY(ARRAY(SELECT id FROM items)) AND s.id = i.id AND s.state = v_waiting
    RETURNING s.id, s.task_id, s.seq, s.attempts, i.result, i.error, i.reason, i.why),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'waiting', 'running', p_pid, why || jsonb_build_object('attempt', attempts) FROM taken)
  SELECT array_agg(id ORDER BY id),
         jsonb_agg(jsonb_build_object('id', id, 'attempt', attempts, 'result', result)) FILTER (WHERE error IS NULL),
         jsonb_agg(jsonb_build_object('id', id, 'attempt', attempts, 'error', error, 'reason', reason)) FILTER (WHERE error IS NOT NULL)
    INTO v_ids, v_successes, v_failures
    FROM taken;
  IF v_ids IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY SELECT * FROM weft.finish_steps(p_pid, v_ids, v_successes, v_failures, NULL, '{}'::text[], 0, false, p_outbox,
                                                NULL, NULL, 0, 0, 0);
END $fn$;
