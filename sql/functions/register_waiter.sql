-- A consumer's waiter registration, as one of its claiming statements left
-- it: p_waiting (the statement came back with room left) registers it on
-- every queue; otherwise the statement filled its room and removes the
-- registration, but only one made by a statement that had come back before
-- this one was sent (seq <= p_known): a statement still in flight then may
-- have registered for free slots this one was not given (migration 011).
-- p_seq is this statement's number in the consumer's order of sending.
CREATE OR REPLACE FUNCTION weft.register_waiter(p_queues text[], p_consumer text, p_channel text, p_ttl_ms integer, p_waiting boolean,
                                     p_seq bigint, p_known bigint)
RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF p_consumer IS NULL THEN
    RETURN;
  ELSIF p_waiting THEN
    INSERT INTO weft.queue_waiters (queue, consumer, channel, expires_at, seq)
    SELECT q, p_consumer, p_channel, clock_timestamp() + make_interval(secs => p_ttl_ms / 1000.0), p_seq FROM unnest(p_queues) AS q
    ON CONFLICT (queue, consumer) DO UPDATE
      SET channel = excluded.channel, expires_at = excluded.expires_at, seq = greatest(weft.queue_waiters.seq, excluded.seq);
  ELSE
    DELETE FROM weft.queue_waiters WHERE queue = ANY(p_queues) AND consumer = p_consumer AND seq <= p_known;
  END IF;
END $fn$;
