-- Claim these steps (RabbitMQ deliveries name them) for p_worker; a step that
-- is not `enqueued` any more is skipped (a duplicate or stale message).
CREATE OR REPLACE FUNCTION weft.claim_ids(p_worker text, p_ids uuid[]) RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_ids uuid[];
BEGIN
  v_ids := weft.claim_steps(p_worker, p_ids);
  IF v_ids IS NOT NULL THEN
    RETURN QUERY SELECT * FROM weft.claimed_events(v_ids);
  END IF;
END $fn$;
