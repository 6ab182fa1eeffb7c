-- Delete up to p_limit tasks that ended more than p_keep ago, with their
-- steps, edges and transitions (no foreign key cascades: see section 2). Tasks are found through the primary key:
-- ids are UUIDv7, time-ordered, so p_before_id (the first id of the cutoff
-- time) bounds the scan to old tasks. Rows locked by someone else are skipped.
CREATE OR REPLACE FUNCTION weft.delete_expired_tasks(p_before_id uuid, p_keep interval, p_limit integer) RETURNS integer
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_ids uuid[];
BEGIN
  SELECT array_agg(id) INTO v_ids FROM (
    SELECT id FROM weft.tasks
     WHERE id < p_before_id AND state IN ('complete', 'error', 'cancelled') AND completed_at < clock_timestamp() - p_keep
     ORDER BY id LIMIT p_limit FOR UPDATE SKIP LOCKED) AS t;
  IF v_ids IS NULL THEN
    RETURN 0;
  END IF;
  DELETE FROM weft.step_transitions x USING weft.steps s WHERE s.task_id = ANY(v_ids) AND x.step_id = s.id;
  DELETE FROM weft.step_edges e USING weft.steps s WHERE s.task_id = ANY(v_ids) AND e.from_step = s.id;
  DELETE FROM weft.steps WHERE task_id = ANY(v_ids);
  DELETE FROM weft.task_transitions WHERE task_id = ANY(v_ids);
  DELETE FROM weft.tasks WHERE id = ANY(v_ids);
  RETURN array_length(v_ids, 1);
END $fn$;
