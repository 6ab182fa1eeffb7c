-- Steps running in p_worker's name for longer than p_older_ms: the worker
-- compares them with what it really runs (see weft.release_steps).
CREATE OR REPLACE FUNCTION weft.running_steps_of(p_worker text, p_older_ms integer)
RETURNS TABLE (id uuid, attempt integer)
LANGUAGE plpgsql STABLE SET enable_seqscan = off SET enable_bitmapscan = off AS $fn$
BEGIN
  RETURN QUERY
  SELECT s.id, s.attempts FROM weft.steps s
   WHERE s.state = 'running' AND s.worker_id = p_worker
     AND s.started_at < clock_timestamp() - make_interval(secs => p_older_ms / 1000.0);
END $fn$;
