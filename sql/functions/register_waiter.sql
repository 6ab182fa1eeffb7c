CREATE OR REPLACE FUNCTION weft.register_waiter(p_queues text[], p_consumer text, p_channel text, p_ttl_ms integer, p_waiting boolean)
RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF p_consumer IS NULL THEN
    RETURN;
  ELSIF p_waiting THEN
    INSERT INTO weft.queue_waiters (queue, consumer, channel, expires_at)
    SELECT q, p_consumer, p_channel, clock_timestamp() + make_interval(secs => p_ttl_ms / 1000.0) FROM unnest(p_queues) AS q
    ON CONFLICT (queue, consumer) DO UPDATE SET channel = excluded.channel, expires_at = excluded.expires_at;
  ELSE
    DELETE FROM weft.queue_waiters WHERE queue = ANY(p_queues) AND consumer = p_consumer;
  END IF;
END $fn$;
