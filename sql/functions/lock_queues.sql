-- The wake-up handshake. A consumer holds a shared lock on each of its queues
-- from before the snapshot of the claim that may register it as a waiter
-- until that commits; weft.wake takes the same locks exclusively before it
-- picks waiters. So either the pick sees the registration (and wakes the
-- consumer), or the consumer's claim runs after the enqueue committed (and
-- finds the step): no wake-up is lost, and nobody claims twice to be sure.
-- Advisory locks live in memory (no WAL); keys are sorted so lockers of
-- several queues cannot deadlock.
CREATE OR REPLACE FUNCTION weft.lock_queues(p_queues text[], p_exclusive boolean) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF p_exclusive THEN
    PERFORM pg_advisory_xact_lock(2003199092, k) FROM (SELECT DISTINCT hashtext(q) AS k FROM unnest(p_queues) AS q ORDER BY 1) AS x;
  ELSE
    PERFORM pg_advisory_xact_lock_shared(2003199092, k) FROM (SELECT DISTINCT hashtext(q) AS k FROM unnest(p_queues) AS q ORDER BY 1) AS x;
  END IF;
END $fn$;
