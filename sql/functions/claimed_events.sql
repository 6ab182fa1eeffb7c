-- What a worker needs to run the steps it just claimed: the step, the task's
-- context and its parents' results, as JSON text (passed to Python and Ruby
-- as is, so big integers stay exact).
-- (PL/pgSQL, not SQL: a SQL function that cannot be inlined is planned again at every call.)
-- The state is compared with a variable so the steps are read by id, never
-- through the steps_running partial index (see weft.claim_steps).
CREATE OR REPLACE FUNCTION weft.claimed_events(p_ids uuid[]) RETURNS SETOF weft.step_event
LANGUAGE plpgsql STABLE SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_running CONSTANT text := 'running';
BEGIN
  RETURN QUERY
  SELECT 'claimed'::text, s.id, s.task_id, s.state, s.queue, s.name, s.attempts,
         jsonb_build_object('namespace', t.namespace, 'template', t.name, 'version', t.version,
                            'template_step', s.template_step, 'type', s.type, 'runtime', s.runtime,
                            'handler', s.handler, 'max_attempts', s.max_attempts, 'timeout_ms', s.timeout_ms,
                            'inputs', s.inputs, 'batch', s.batch, 'failures', s.failures),
         t.context::text,
         (SELECT coalesce(jsonb_object_agg(p.name, p.result), '{}'::jsonb)::text
            FROM weft.step_edges e JOIN weft.steps p ON p.id = e.from_step
           WHERE e.to_step = s.id),
         EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = s.task_id)
    FROM weft.steps s JOIN weft.tasks t ON t.id = s.task_id
   WHERE s.id = ANY(p_ids) AND s.state = v_running;
END $fn$;
