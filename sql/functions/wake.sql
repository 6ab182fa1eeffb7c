-- After the COMMIT of a statement that enqueued steps (and in the same round
-- trip as its other notifications): take one waiting consumer per ready step
-- of each queue (the most recently registered first), delete their
-- registrations and NOTIFY each on its channel; consumers on p_local_channel
-- are returned instead, for the caller to wake in-process. p_channels and
-- p_payloads are other notifications to send (task ends, live step changes).
-- Runs after the commit, never inside it (PostgreSQL commits notifying
-- transactions one at a time); see weft.lock_queues for why no wake-up is lost.
CREATE OR REPLACE FUNCTION weft.wake(p_queues text[], p_counts integer[], p_local_channel text, p_channels text[], p_payloads text[])
RETURNS TABLE (consumer text, channel text)
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  r        record;
  v_picked jsonb;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  IF p_queues IS NOT NULL THEN
    PERFORM weft.lock_queues(p_queues, true);
  END IF;
  WITH wanted AS (SELECT w.q, w.n FROM unnest(p_queues, p_counts) AS w(q, n)),
  picked AS (
    SELECT p.queue, p.consumer, p.channel
      FROM wanted,
           LATERAL (SELECT qw.queue, qw.consumer, qw.channel FROM weft.queue_waiters qw
                     WHERE qw.queue = wanted.q AND qw.expires_at > clock_timestamp()
                     ORDER BY qw.expires_at DESC LIMIT wanted.n FOR UPDATE SKIP LOCKED) AS p),
  gone AS (
    DELETE FROM weft.queue_waiters qw USING picked p
     WHERE qw.queue = p.queue AND qw.consumer = p.consumer
    RETURNING qw.consumer, qw.channel)
  SELECT coalesce(jsonb_agg(DISTINCT jsonb_build_object('consumer', g.consumer, 'channel', g.channel)), '[]'::jsonb)
    INTO v_picked FROM gone g;
  FOR r IN SELECT x->>'consumer' AS consumer, x->>'channel' AS channel FROM jsonb_array_elements(v_picked) AS x LOOP
    IF r.channel = p_local_channel THEN
      consumer := r.consumer;
      channel := r.channel;
      RETURN NEXT;
    ELSE
      PERFORM pg_notify(r.channel, r.consumer);
    END IF;
  END LOOP;
  IF p_channels IS NOT NULL THEN
    PERFORM pg_notify(c, p) FROM unnest(p_channels, p_payloads) AS n(c, p);
  END IF;
END $fn$;
