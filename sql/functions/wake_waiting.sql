-- `waiting` steps whose run_after has come (steps_wait_due), up to p_limit,
-- each finished by weft.complete_waiting as process p_pid:
--   sleep with {ms}       complete, result {slept_until}
--   sleep with {until}    first visit: the value is read (weft.wait_until_value)
--                         and becomes run_after, so it stays waiting when that is
--                         later; due: complete as above; not an RFC 3339 time
--                         with its zone: the step fails, naming the path and value
--   wait (timed out)      on_timeout result: complete with wait.result;
--                         otherwise it fails (WaitTimedOut) and its task with it
-- Safe on many orchestrators at once (FOR UPDATE SKIP LOCKED).
-- requires: complete_waiting, wait_deadline
CREATE OR REPLACE FUNCTION weft.wake_waiting(p_pid text, p_outbox boolean, p_limit integer)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_items jsonb := '[]'::jsonb;
  v_step  record;
  v_value text;
  v_at    timestamptz;
  v_msg   text;
BEGIN
  FOR v_step IN
    SELECT id, task_id, name, type, wait, run_after FROM weft.steps
     WHERE state = 'waiting' AND run_after <= clock_timestamp()
     ORDER BY run_after LIMIT p_limit FOR UPDATE SKIP LOCKED
  LOOP
    IF v_step.type = 'sleep' AND v_step.wait ? 'until' AND NOT coalesce((v_step.wait->>'until_read')::boolean, false) THEN
      v_value := weft.wait_until_value(v_step.task_id, v_step.wait);
      v_at := weft.rfc3339_time(v_value);
      IF v_at IS NULL THEN
        v_msg := format('sleep step %s: until %s is %s, not a time with its zone; write it as RFC 3339, e.g. 2026-12-24T09:00:00Z',
                        v_step.name, v_step.wait->>'until', coalesce(to_jsonb(v_value)::text, 'missing'));
        v_items := v_items || jsonb_build_object('id', v_step.id, 'reason', v_msg,
                                                 'error', jsonb_build_object('class', 'SleepUntilInvalid', 'message', v_msg),
                                                 'why', jsonb_build_object('reason', 'until unreadable'));
        CONTINUE;
      END IF;
      IF v_at > clock_timestamp() THEN
        UPDATE weft.steps SET run_after = v_at, wait = wait || '{"until_read": true}', updated_at = clock_timestamp() WHERE id = v_step.id;
        CONTINUE;
      END IF;
      v_step.run_after := v_at;
    END IF;
    IF v_step.type = 'sleep' THEN
      v_items := v_items || jsonb_build_object('id', v_step.id, 'result', jsonb_build_object('slept_until', v_step.run_after),
                                               'why', jsonb_build_object('reason', 'slept'));
    ELSIF v_step.wait->>'on_timeout' = 'result' THEN
      v_items := v_items || jsonb_build_object('id', v_step.id, 'result', v_step.wait->'result',
                                               'why', jsonb_build_object('reason', 'timed out', 'on_timeout', 'result'));
    ELSE
      v_msg := format('wait step %s got no signal within its timeout (%s)', v_step.name, v_step.wait->>'timeout');
      v_items := v_items || jsonb_build_object('id', v_step.id, 'reason', v_msg,
                                               'error', jsonb_build_object('class', 'WaitTimedOut', 'message', v_msg),
                                               'why', jsonb_build_object('reason', 'timed out', 'on_timeout', 'fail'));
    END IF;
  END LOOP;
  IF jsonb_array_length(v_items) > 0 THEN
    RETURN QUERY SELECT * FROM weft.complete_waiting(v_items, p_pid, p_outbox);
  END IF;
END $fn$;
