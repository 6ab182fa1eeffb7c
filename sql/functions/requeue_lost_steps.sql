-- Running steps whose worker is gone: its process row has not heartbeaten for
-- p_lease_ms (or there is none) and the run started longer ago than that. Such
-- a step is run again without using the retry budget (losses + 1), unless it
-- has lost its worker p_max_losses times: then it and its task fail, saying so.
-- Each loss is written into the step's error history with its cause (the
-- worker's recorded exit, weft.loss_entry), the transition names the cause,
-- and WorkerLostError counts the causes of the losses that stopped the step
-- (weft.loss_summary).
-- The candidates are picked through the steps_running partial index (the
-- literal state = 'running' there is meant); the UPDATE finds them again by
-- id and re-checks the state with a variable, so it cannot walk that index a
-- second time (see weft.claim_steps). At most p_limit steps a call (the
-- sweep's next round takes the rest); their loss entries are read once, as a
-- materialized set (a subquery in FROM was read again for every step moved:
-- 20,100 index scans for 200 lost steps).
-- requires: event_row, loss_entry, loss_summary, append_error
CREATE OR REPLACE FUNCTION weft.requeue_lost_steps(p_pid text, p_lease_ms integer, p_max_losses integer, p_outbox boolean, p_limit integer)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_lease interval := make_interval(secs => p_lease_ms / 1000.0);
  v_ids    uuid[];
  v_events weft.step_event[];
  v_ready  weft.step_event[];
  v_fail   jsonb;
  r        record;
  v_running CONSTANT text := 'running';
BEGIN
  SELECT array_agg(l.id) INTO v_ids
    FROM (SELECT s.id FROM weft.steps s
           WHERE s.state = 'running' AND s.started_at < clock_timestamp() - v_lease
             AND NOT EXISTS (SELECT 1 FROM weft.processes p
                              WHERE p.id = s.worker_id AND p.heartbeat_at > clock_timestamp() - v_lease)
           LIMIT p_limit) AS l;
  IF v_ids IS NULL THEN
    RETURN;
  END IF;
  WITH entries AS MATERIALIZED (
    SELECT x.id, weft.loss_entry(x.worker_id, x.attempts, p.exit) AS loss
      FROM weft.steps x LEFT JOIN weft.processes p ON p.id = x.worker_id
     WHERE x.id = ANY(v_ids)),
  lost AS (
    UPDATE weft.steps s
       SET state = CASE WHEN s.losses + 1 >= p_max_losses THEN 'error' ELSE 'enqueued' END,
           seq = s.seq + 1, losses = s.losses + 1,
           enqueued_at = CASE WHEN s.losses + 1 >= p_max_losses THEN s.enqueued_at ELSE clock_timestamp() END,
           errors = weft.append_error(s.errors, w.loss),
           error = CASE WHEN s.losses + 1 >= p_max_losses
                        THEN jsonb_build_object('class', 'WorkerLostError', 'permanent', true, 'kind', 'worker_lost', 'language', 'weft',
                               'backtrace', '[]'::jsonb,
                               'message', format('step %s lost its worker %s times: %s; it is not run again (the last worker, %s, '
                                                 || 'was running attempt %s). A handler that kills or hangs its process (os._exit, '
                                                 || 'a crash, running out of memory) does this: fix the handler, then retry the task',
                                                 s.name, s.losses + 1,
                                                 weft.loss_summary(coalesce(s.errors, '[]'::jsonb) || jsonb_build_array(w.loss), s.losses + 1),
                                                 coalesce(s.worker_id, '?'), s.attempts))
                        ELSE s.error END,
           finished_at = CASE WHEN s.losses + 1 >= p_max_losses THEN clock_timestamp() ELSE s.finished_at END,
           updated_at = clock_timestamp()
      FROM entries AS w
     WHERE s.id = w.id AND s.id = ANY(v_ids) AND s.state = v_running
       AND NOT EXISTS (SELECT 1 FROM weft.processes p
                        WHERE p.id = s.worker_id AND p.heartbeat_at > clock_timestamp() - v_lease)
    RETURNING s.id, s.task_id, s.seq, s.state, s.queue, s.name, s.attempts, s.losses, s.worker_id, s.error, w.loss->>'cause' AS cause),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'running', state, p_pid,
           jsonb_build_object('reason', 'worker lost', 'worker', worker_id, 'attempt', attempts, 'losses', losses, 'cause', cause) FROM lost)
  SELECT array_agg(weft.finished_event(l.id, l.task_id, 'error', l.name, l.attempts)) FILTER (WHERE l.state = 'error'),
         array_agg(weft.enqueued_event(l.id, l.task_id, l.queue, l.name, l.attempts)) FILTER (WHERE l.state = 'enqueued'),
         jsonb_agg(jsonb_build_object('task', l.task_id, 'step', l.name, 'losses', l.losses, 'error', l.error))
           FILTER (WHERE l.state = 'error')
    INTO v_events, v_ready, v_fail
    FROM lost l;
  RETURN QUERY SELECT * FROM unnest(v_events);
  RETURN QUERY SELECT * FROM weft.dispatch_ready(v_ready, p_outbox);
  FOR r IN SELECT x AS f FROM jsonb_array_elements(coalesce(v_fail, '[]'::jsonb)) AS x LOOP
    RETURN QUERY SELECT * FROM weft.fail_task((r.f->>'task')::uuid, r.f->>'step', 'worker lost ' || (r.f->>'losses') || ' times',
                                              r.f->'error', p_pid);
  END LOOP;
END $fn$;
