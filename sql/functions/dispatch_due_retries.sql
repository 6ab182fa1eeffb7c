-- waiting_retry → enqueued for steps whose backoff has elapsed (cancelled
-- instead when their task is no longer running).
-- The due steps are picked through the steps_retry_due partial index (that
-- literal is meant); the UPDATE takes their ids as an array and re-checks the
-- state with a variable, so it finds them by id and cannot walk that index
-- again (see weft.claim_steps).
-- requires: event_row
CREATE OR REPLACE FUNCTION weft.dispatch_due_retries(p_pid text, p_outbox boolean, p_limit integer)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_waiting_retry CONSTANT text := 'waiting_retry';
BEGIN
  RETURN QUERY
  WITH due AS (
    SELECT id FROM weft.steps WHERE state = 'waiting_retry' AND run_after <= clock_timestamp()
     ORDER BY run_after LIMIT p_limit FOR UPDATE SKIP LOCKED),
  moved AS (
    UPDATE weft.steps s
       SET state = CASE WHEN t.state = 'running' THEN 'enqueued' ELSE 'cancelled' END,
           seq = s.seq + 1, run_after = NULL,
           enqueued_at = CASE WHEN t.state = 'running' THEN clock_timestamp() ELSE s.enqueued_at END,
           updated_at = clock_timestamp()
      FROM weft.tasks t
     WHERE s.id = ANY(ARRAY(SELECT id FROM due)) AND t.id = s.task_id AND s.state = v_waiting_retry
    RETURNING s.id, s.task_id, s.seq, s.state, s.queue, s.name, s.attempts),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'waiting_retry', state, p_pid,
           CASE WHEN state = 'enqueued' THEN jsonb_build_object('reason', 'backoff elapsed', 'next_attempt', attempts + 1)
                ELSE '{"reason":"task ended"}'::jsonb END
      FROM moved)
  SELECT * FROM weft.dispatch_ready(ARRAY(SELECT weft.enqueued_event(m.id, m.task_id, m.queue, m.name, m.attempts)
                                            FROM moved m WHERE m.state = 'enqueued'), p_outbox);
END $fn$;
