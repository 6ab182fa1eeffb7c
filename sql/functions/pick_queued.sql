-- Up to p_limit ready steps of p_queues, oldest first within each queue,
-- locked for the caller (rows another claim holds are skipped): what
-- weft.claim_queued and weft.finish_steps (filling a worker's room) then
-- claim with weft.claim_steps.
CREATE OR REPLACE FUNCTION weft.pick_queued(p_queues text[], p_limit integer) RETURNS uuid[]
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
BEGIN
  RETURN ARRAY(
    SELECT m.id
      FROM unnest(p_queues) AS q(name),
           LATERAL (SELECT id FROM weft.steps
                     WHERE state = 'enqueued' AND queue = q.name
                     ORDER BY enqueued_at LIMIT p_limit FOR UPDATE SKIP LOCKED) AS m
     LIMIT p_limit);
END $fn$;
