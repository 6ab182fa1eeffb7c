-- Workflow steps (child workflows, migration 009): a `workflow` step waits,
-- holding no worker, for a task of another template that an orchestrator
-- started for it (src/orchestration/child-workflows.ts), and ends as that
-- task ended. Each is finished by weft.complete_waiting, so the step, the
-- children it releases and its task move in one commit, as when a worker
-- finishes a step.
-- requires: complete_waiting

-- What a child task hands its parent: the results of its final steps (the
-- complete steps no other step depends on), by step name.
CREATE OR REPLACE FUNCTION weft.child_results(p_task uuid)
RETURNS jsonb
LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(jsonb_object_agg(s.name, s.result), '{}'::jsonb)
    FROM weft.steps s
   WHERE s.task_id = p_task AND s.state = 'complete'
     AND NOT EXISTS (SELECT 1 FROM weft.step_edges e WHERE e.from_step = s.id)
$fn$;

-- Waiting workflow steps whose child ended (all of them, up to p_limit, or
-- those of p_steps), each finished as process p_pid:
--   child complete    complete, result {task_id, results: weft.child_results}
--   child error       failed for good (class ChildWorkflowFailed), naming the
--                     child, its failed step and that step's error
--   child cancelled   failed for good (class ChildWorkflowCancelled), naming
--                     who cancelled it and why
-- The `waiting → running` audit row says `reason: child <state>` and the
-- child's id. Safe on many orchestrators at once (FOR UPDATE SKIP LOCKED).
-- The sweep (no p_steps) finds them through steps_workflow_child, the literal
-- 'waiting' being meant; p_steps (weft.link_child) are found by id, with the
-- state compared with a variable so the planner cannot walk that index
-- instead (see weft.claim_steps). Two statements: a generic plan of one that
-- did both (`p_steps IS NULL OR s.id = ANY(p_steps)`) could only walk it.
CREATE OR REPLACE FUNCTION weft.finish_workflow_steps(p_pid text, p_outbox boolean, p_limit integer, p_steps uuid[] DEFAULT NULL)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_items   jsonb := '[]'::jsonb;
  v_steps   refcursor;
  v_step    record;
  v_child   text;
  v_msg     text;
  v_why     jsonb;
  v_waiting CONSTANT text := 'waiting';
BEGIN
  IF p_steps IS NULL THEN
    OPEN v_steps FOR
      SELECT s.id, s.name, c.id AS child_id, c.state AS child_state, c.namespace, c.name AS child_name, c.version, c.error AS child_error
        FROM weft.steps s JOIN weft.tasks c ON c.id = s.child_task_id
       WHERE s.state = 'waiting' AND s.child_task_id IS NOT NULL
         AND c.state IN ('complete', 'error', 'cancelled')
       ORDER BY s.id LIMIT p_limit
         FOR UPDATE OF s SKIP LOCKED;
  ELSE
    OPEN v_steps FOR
      SELECT s.id, s.name, c.id AS child_id, c.state AS child_state, c.namespace, c.name AS child_name, c.version, c.error AS child_error
        FROM weft.steps s JOIN weft.tasks c ON c.id = s.child_task_id
       WHERE s.id = ANY (p_steps) AND s.state = v_waiting AND s.child_task_id IS NOT NULL
         AND c.state IN ('complete', 'error', 'cancelled')
       ORDER BY s.id LIMIT p_limit
         FOR UPDATE OF s SKIP LOCKED;
  END IF;
  LOOP
    FETCH v_steps INTO v_step;
    EXIT WHEN NOT FOUND;
    v_child := format('%s/%s@%s (task %s)', v_step.namespace, v_step.child_name, v_step.version, v_step.child_id);
    v_why := jsonb_build_object('reason', 'child ' || v_step.child_state, 'child_task_id', v_step.child_id);
    IF v_step.child_state = 'complete' THEN
      v_items := v_items || jsonb_build_object('id', v_step.id, 'why', v_why,
                                               'result', jsonb_build_object('task_id', v_step.child_id,
                                                                            'results', weft.child_results(v_step.child_id)));
      CONTINUE;
    END IF;
    IF v_step.child_state = 'error' THEN
      v_msg := format('child workflow %s failed at step %s: %s%s', v_child,
                      coalesce(v_step.child_error->>'step', '?'),
                      coalesce(v_step.child_error->'error'->>'class' || ': ', ''),
                      coalesce(v_step.child_error->'error'->>'message', v_step.child_error->>'reason', 'no error recorded'));
      v_items := v_items || jsonb_build_object('id', v_step.id, 'why', v_why, 'reason', v_msg,
                                               'error', jsonb_build_object('class', 'ChildWorkflowFailed', 'message', v_msg));
    ELSE
      v_msg := format('child workflow %s was cancelled%s%s', v_child,
                      coalesce(' by ' || (v_step.child_error->>'by'), ''),
                      coalesce(': ' || (v_step.child_error->>'message'), ''));
      v_items := v_items || jsonb_build_object('id', v_step.id, 'why', v_why, 'reason', v_msg,
                                               'error', jsonb_build_object('class', 'ChildWorkflowCancelled', 'message', v_msg));
    END IF;
  END LOOP;
  CLOSE v_steps;
  IF jsonb_array_length(v_items) > 0 THEN
    RETURN QUERY SELECT * FROM weft.complete_waiting(v_items, p_pid, p_outbox);
  END IF;
END $fn$;

-- Link the task p_child, started for the workflow step p_step while it was
-- at transition p_seq, to that step; a no-op when the step has moved on (it
-- was cancelled, or another orchestrator linked the same child first). A
-- child that already ended (a fast one) finishes the step at once.
-- Locks the step, then the child task: the order of weft.cancel_task.
-- The step is found by id, its state and type compared with variables: the
-- literals would match the predicate of steps_workflow_unstarted, which the
-- planner may then walk instead of steps_pkey (see weft.claim_steps).
CREATE OR REPLACE FUNCTION weft.link_child(p_step uuid, p_seq integer, p_child uuid, p_pid text, p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_waiting  CONSTANT text := 'waiting';
  v_workflow CONSTANT text := 'workflow';
BEGIN
  UPDATE weft.steps SET child_task_id = p_child, updated_at = clock_timestamp()
   WHERE id = p_step AND seq = p_seq AND state = v_waiting AND type = v_workflow AND child_task_id IS NULL;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  UPDATE weft.tasks SET parent_step_id = p_step WHERE id = p_child AND parent_step_id IS NULL;
  RETURN QUERY SELECT * FROM weft.finish_workflow_steps(p_pid, p_outbox, 1, ARRAY[p_step]);
END $fn$;

-- Fail a waiting workflow step whose child could not be started (its
-- template is not registered, the mapped context fails its input_schema,
-- the chain of children is too deep): for good, class p_class. A no-op when
-- the step has moved on. The step is found by id, as in weft.link_child.
CREATE OR REPLACE FUNCTION weft.fail_workflow_step(p_step uuid, p_seq integer, p_class text, p_message text, p_pid text, p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_waiting  CONSTANT text := 'waiting';
  v_workflow CONSTANT text := 'workflow';
BEGIN
  PERFORM 1 FROM weft.steps
    WHERE id = p_step AND seq = p_seq AND state = v_waiting AND type = v_workflow AND child_task_id IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  RETURN QUERY SELECT * FROM weft.complete_waiting(
    jsonb_build_array(jsonb_build_object('id', p_step, 'reason', p_message,
                                         'error', jsonb_build_object('class', p_class, 'message', p_message),
                                         'why', jsonb_build_object('reason', 'child not started'))),
    p_pid, p_outbox);
END $fn$;
