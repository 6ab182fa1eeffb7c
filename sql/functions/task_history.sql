-- A task's transitions and its steps' as JSON text, oldest first (ties: the
-- task's before its steps', then by sequence), at most p_limit; with p_step
-- (a step name) only that step's. NULL when there is no such task, or no
-- such step in it.
--
-- The steps are found through their task (steps_task_id_name_key) and their
-- transitions by step (step_transitions_pkey): step_transitions has no index
-- on task_id, so reading them by task read the whole table, every transition
-- of every task, for each history asked. A function with the step boundary's
-- planner settings, as weft.task_view and for the same reason.
CREATE OR REPLACE FUNCTION weft.task_history(p_task uuid, p_step text, p_limit integer) RETURNS text
LANGUAGE plpgsql STABLE SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_history text;
BEGIN
  WITH scope AS (
    SELECT t.id, s.id AS step_id FROM weft.tasks t LEFT JOIN weft.steps s ON s.task_id = t.id AND s.name = p_step
     WHERE t.id = p_task AND (p_step IS NULL OR s.id IS NOT NULL)),
  rows AS (
    (SELECT tt.at, NULL::text AS step, tt.seq, tt.from_state, tt.to_state, tt.process_id, tt.metadata
       FROM weft.task_transitions tt JOIN scope ON tt.task_id = scope.id WHERE p_step IS NULL
     UNION ALL
     SELECT st.at, s.name, st.seq, st.from_state, st.to_state, st.process_id, st.metadata
       FROM scope JOIN weft.steps s ON s.task_id = scope.id AND (scope.step_id IS NULL OR s.id = scope.step_id)
       JOIN weft.step_transitions st ON st.step_id = s.id)
    ORDER BY 1, 2 NULLS FIRST, 3 LIMIT p_limit)
  SELECT (SELECT coalesce(json_agg(json_build_object('at', at, 'step', step, 'seq', seq, 'from', from_state, 'to', to_state,
                                                    'process', process_id, 'metadata', metadata)
                                   ORDER BY at, step NULLS FIRST, seq), '[]')
            FROM rows)::text INTO v_history
    FROM scope;
  RETURN v_history;
END $fn$;
