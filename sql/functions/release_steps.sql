-- A worker gives steps it holds back without running them, and without using
-- their retry budget (failures and losses stay as they are):
--   * its runtime refused them (the circuit breaker is open, the call queue
--     is full): p_delay_ms later, for this or another worker;
--   * it finds steps claimed in its name that it never started (the answer
--     of the claim was lost with its connection): at once.
-- Each item is fenced like a finish (running, this worker, that attempt). A
-- step whose task has ended meanwhile is cancelled instead. Returns a
-- `finished` row per step given back (state waiting_retry, enqueued or
-- cancelled) and the dispatch rows of those enqueued.
CREATE OR REPLACE FUNCTION weft.release_steps(p_worker text, p_ids uuid[], p_attempts integer[], p_delay_ms integer, p_reason text,
                                   p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql AS $fn$
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
     WHERE s.id = i.id AND t.id = s.task_id AND s.state = 'running'
       AND s.attempts = i.attempt AND s.worker_id IS NOT DISTINCT FROM p_worker AND s.finished_at IS NULL
    RETURNING s.id, s.task_id, s.seq, s.state, s.queue, s.name, s.attempts, s.run_after),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'running', state, p_worker,
           jsonb_build_object('reason', p_reason, 'attempt', attempts, 'delay_ms', p_delay_ms) FROM released),
  messages AS (
    INSERT INTO weft.outbox (queue, body)
    SELECT queue, jsonb_build_object('task_id', task_id, 'step_id', id) FROM released WHERE state = 'enqueued' AND p_outbox
    RETURNING id, queue, body)
  SELECT 'finished'::text, r.id, r.task_id, r.state, NULL, r.name, r.attempts,
         jsonb_strip_nulls(jsonb_build_object('run_after', r.run_after)), NULL::text, NULL::text,
         EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = r.task_id)
    FROM released r
  UNION ALL
  SELECT 'enqueued', r.id, r.task_id, 'enqueued', r.queue, r.name, NULL::int, NULL::jsonb, NULL, NULL,
         EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = r.task_id)
    FROM released r WHERE r.state = 'enqueued' AND NOT p_outbox
  UNION ALL
  SELECT 'outbox', (m.body->>'step_id')::uuid, (m.body->>'task_id')::uuid, 'enqueued', m.queue, NULL, NULL,
         jsonb_build_object('id', m.id, 'body', m.body), NULL, NULL, NULL
    FROM messages m;
END $fn$;
