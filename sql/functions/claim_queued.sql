-- Claim up to p_limit ready steps of p_queues, oldest first, for p_worker.
-- A claim that comes back short registers the consumer as a waiter of every
-- queue (it will be woken by the next statement that enqueues a step there);
-- a full one removes the registration (see weft.register_waiter for
-- p_waiter_seq and p_waiter_known).
CREATE OR REPLACE FUNCTION weft.claim_queued(p_worker text, p_queues text[], p_limit integer,
                                  p_consumer text, p_channel text, p_waiter_ttl_ms integer,
                                  p_waiter_seq bigint, p_waiter_known bigint)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_ids uuid[];
BEGIN
  PERFORM weft.lock_queues(p_queues, false);
  IF p_limit > 0 THEN
    v_ids := weft.claim_steps(p_worker, weft.pick_queued(p_queues, p_limit));
  END IF;
  PERFORM weft.register_waiter(p_queues, p_consumer, p_channel, p_waiter_ttl_ms,
                               coalesce(array_length(v_ids, 1), 0) < p_limit, p_waiter_seq, p_waiter_known);
  IF v_ids IS NOT NULL THEN
    RETURN QUERY SELECT * FROM weft.claimed_events(v_ids);
  END IF;
END $fn$;
