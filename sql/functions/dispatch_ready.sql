-- The dispatch of steps a statement made ready (p_ready: their `enqueued`
-- events, from weft.enqueued_event). With the PostgreSQL queue the events are
-- returned as they are (the caller wakes a consumer per step after COMMIT);
-- with a broker (p_outbox) each step gets a message in weft.outbox, in the
-- same transaction, and an `outbox` event instead (the caller publishes it
-- after COMMIT). Every statement that makes steps ready ends here.
-- requires: event_row
CREATE OR REPLACE FUNCTION weft.dispatch_ready(p_ready weft.step_event[], p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql AS $fn$
BEGIN
  IF p_ready IS NULL OR cardinality(p_ready) = 0 THEN
    RETURN;
  ELSIF NOT p_outbox THEN
    RETURN QUERY SELECT * FROM unnest(p_ready);
  ELSE
    RETURN QUERY
    WITH messages AS (
      INSERT INTO weft.outbox (queue, body)
      SELECT r.queue, jsonb_build_object('task_id', r.task_id, 'step_id', r.step_id) FROM unnest(p_ready) AS r
      RETURNING id, queue, body)
    SELECT (weft.outbox_event(m.id, m.queue, m.body, r.name, r.attempt, r.watched)).*
      FROM messages m JOIN unnest(p_ready) AS r ON r.step_id = (m.body->>'step_id')::uuid;
  END IF;
END $fn$;
