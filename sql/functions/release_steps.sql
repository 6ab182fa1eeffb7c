-- A worker gives steps it holds back without running them, and without using
-- their retry budget (failures and losses stay as they are):
--   * its runtime refused them (the circuit breaker is open, the call queue
--     is full): p_delay_ms later, for this or another worker;
--   * it finds steps claimed in its name that it never started (the answer
--     of the claim was lost with its connection): at once.
-- Each item is fenced like a finish (running, weft.holds_attempt). A
-- step whose task has ended meanwhile is cancelled instead. Returns a
-- `finished` row per step given back (state waiting_retry, enqueued or
-- cancelled) and the dispatch rows of those enqueued.
-- The steps are found by id, and `running` is compared with a variable, never
-- a literal, so the planner cannot read them through the steps_running
-- partial index instead (see weft.claim_steps).
-- requires: event_row, holds_attempt
CREATE OR REPLACE FUNCTION weft.release_steps(p_worker text, p_ids uuid[], p_attempts integer[], p_delay_ms integer, p_reason text,
                                   p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_running CONSTANT text := 'running';
BEGIN
  RETURN QUERY
  WITH items AS (
    SELECT x.id, x.attempt FROM unnest(p_ids, p_attempts) AS x(id, attempt) ORDER BY x.id),
  released AS (
    UPDATE weft.steps s
       SET state = CASE WHEN t.state NOT IN ('pending', 'running') THEN 'cancelled'
                        WHEN p_delay_ms > 0 THEN 'waiting_retry' ELSE 'enqueued' END,
           seq = s.seq + 1, updated_at = clock_timestamp(),
           run_after = CASE WHEN t.state IN ('pending', 'running') AND p_delay_ms > 0
                            THEN clock_timestamp() + make_interval(secs => p_delay_ms / 1000.0) END,
           enqueued_at = CASE WHEN t.state IN ('pending', 'running') AND p_delay_ms <= 0 THEN clock_timestamp() ELSE s.enqueued_at END,
           finished_at = CASE WHEN t.state NOT IN ('pending', 'running') THEN clock_timestamp() END
      FROM items i, weft.tasks t
     WHERE s.id = i.id AND t.id = s.task_id AND s.state = v_running
       AND weft.holds_attempt(s.worker_id, s.attempts, s.finished_at, p_worker, i.attempt)
    RETURNING s.id, s.task_id, s.seq, s.state, s.queue, s.name, s.attempts, s.run_after),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'running', state, p_worker,
           jsonb_build_object('reason', p_reason, 'attempt', attempts, 'delay_ms', p_delay_ms) FROM released)
  SELECT (weft.finished_event(r.id, r.task_id, r.state, r.name, r.attempts, jsonb_strip_nulls(jsonb_build_object('run_after', r.run_after)),
                              EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = r.task_id))).*
    FROM released r
  UNION ALL
  SELECT * FROM weft.dispatch_ready(ARRAY(
    SELECT weft.enqueued_event(r.id, r.task_id, r.queue, r.name, NULL, EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = r.task_id))
      FROM released r WHERE r.state = 'enqueued'), p_outbox);
END $fn$;
