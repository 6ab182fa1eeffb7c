-- RabbitMQ: enqueued steps unclaimed for p_older_ms (a message the broker
-- lost): enqueued → enqueued with a new outbox row.
-- requires: event_row
CREATE OR REPLACE FUNCTION weft.redispatch_stale(p_pid text, p_older_ms integer, p_limit integer)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
BEGIN
  RETURN QUERY
  WITH stale AS (
    SELECT id FROM weft.steps
     WHERE state = 'enqueued' AND enqueued_at < clock_timestamp() - make_interval(secs => p_older_ms / 1000.0)
     ORDER BY enqueued_at LIMIT p_limit FOR UPDATE SKIP LOCKED),
  moved AS (
    UPDATE weft.steps s SET seq = s.seq + 1, enqueued_at = clock_timestamp(), updated_at = clock_timestamp()
      FROM stale WHERE s.id = stale.id AND s.state = 'enqueued'
    RETURNING s.id, s.task_id, s.seq, s.queue, s.name),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'enqueued', 'enqueued', p_pid, '{"reason":"not claimed in time; dispatched again"}'::jsonb FROM moved)
  SELECT * FROM weft.dispatch_ready(ARRAY(SELECT weft.enqueued_event(m.id, m.task_id, m.queue, m.name, NULL) FROM moved m), true);
END $fn$;
