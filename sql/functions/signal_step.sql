-- A signal for a `wait` step: by task and step name (POST
-- /v1/tasks/:id/steps/:name/signal) or by the step's callback token
-- (p_token; POST /v1/callbacks/:token, no API token needed). The payload
-- becomes the step's result (weft.complete_waiting), so its children see it.
-- The caller has checked the payload against the step's schema. Raises WF404
-- for no such task, step or token, and WF409, naming the state, for a step
-- that is not a wait step or is not waiting.
-- requires: complete_waiting
CREATE OR REPLACE FUNCTION weft.signal_step(p_task uuid, p_step text, p_token text, p_payload jsonb, p_by text, p_pid text,
                                            p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql AS $fn$
DECLARE
  v_step record;
BEGIN
  IF p_token IS NOT NULL THEN
    SELECT id, task_id, name, type, state INTO v_step FROM weft.steps WHERE signal_token = p_token FOR UPDATE;
    IF NOT FOUND THEN
      RAISE SQLSTATE 'WF404' USING MESSAGE = 'no step has this callback token; copy the callback URL from the task''s step (GET /v1/tasks/:id)';
    END IF;
  ELSE
    PERFORM 1 FROM weft.tasks WHERE id = p_task;
    IF NOT FOUND THEN
      RAISE SQLSTATE 'WF404' USING MESSAGE = format('no task %s', p_task);
    END IF;
    SELECT id, task_id, name, type, state INTO v_step FROM weft.steps WHERE task_id = p_task AND name = p_step FOR UPDATE;
    IF NOT FOUND THEN
      RAISE SQLSTATE 'WF404' USING MESSAGE = format('task %s has no step %s', p_task, p_step);
    END IF;
  END IF;
  IF v_step.type <> 'wait' THEN
    RAISE SQLSTATE 'WF409' USING MESSAGE = format(
      'step %s of task %s is a %s step, not a wait step; only a wait step takes a signal', v_step.name, v_step.task_id, v_step.type);
  END IF;
  IF v_step.state <> 'waiting' THEN
    RAISE SQLSTATE 'WF409' USING MESSAGE = format(
      'step %s of task %s is %s, not waiting; a signal is taken only while the step waits (%s)', v_step.name, v_step.task_id, v_step.state,
      CASE v_step.state WHEN 'pending' THEN 'its parents have not completed yet, or its task has not started'
                        WHEN 'complete' THEN 'it already has its result: a signal or its timeout came first'
                        ELSE 'its task has ended or it failed' END);
  END IF;
  RETURN QUERY SELECT * FROM weft.complete_waiting(
    jsonb_build_array(jsonb_build_object('id', v_step.id, 'result', p_payload,
                                         'why', jsonb_strip_nulls(jsonb_build_object('reason', 'signalled', 'by', p_by)))),
    p_pid, p_outbox);
END $fn$;
