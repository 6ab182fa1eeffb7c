-- RabbitMQ: enqueued steps unclaimed for p_older_ms (a message the broker
-- lost): enqueued → enqueued with a new outbox row.
-- The stale steps are picked through the steps_ready partial index (that
-- literal is meant); the UPDATE takes their ids as an array and re-checks the
-- state with a variable, so it finds them by id and cannot walk that index
-- again (see weft.claim_steps).
-- requires: event_row
CREATE OR REPLACE FUNCTION weft.redispatch_stale(p_pid text, p_older_ms integer, p_limit integer)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_enqueued CONSTANT text := 'enqueued';
BEGIN
  RETURN QUERY
  WITH stale AS (
    SELECT id FROM weft.steps
     WHERE state = 'enqueued' AND enqueued_at < clock_timestamp() - make_interval(secs => p_older_ms / 1000.0)
     ORDER BY enqueued_at LIMIT p_limit FOR UPDATE SKIP LOCKED),
  moved AS (
    UPDATE weft.steps s SET seq = s.seq + 1, enqueued_at = clock_timestamp(), updated_at = clock_timestamp()
     WHERE s.id = ANY(ARRAY(SELECT id FROM stale)) AND s.state = v_enqueued
    RETURNING s.id, s.task_id, s.seq, s.queue, s.name),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'enqueued', 'enqueued', p_pid, '{"reason":"not claimed in time; dispatched again"}'::jsonb FROM moved)
  SELECT * FROM weft.dispatch_ready(ARRAY(SELECT weft.enqueued_event(m.id, m.task_id, m.queue, m.name, NULL) FROM moved m), true);
END $fn$;
