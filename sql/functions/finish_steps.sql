-- A worker reports the steps it finished and, in the same statement and
-- commit, moves their tasks on:
--   p_successes  [{id, attempt, result, duration_ms}]
--   p_failures   [{id, attempt, error, retry_ms, reason, duration_ms}]; the
--                worker has applied the retry policy: retry_ms set means
--                retry after that delay, null means fail the task for `reason`
--   p_ids        the ids of both, so every statement finds its rows by key
-- Each item is accepted only from the attempt that holds the step (fencing,
-- weft.holds_attempt: attempts = attempt, worker_id = p_worker, not finished yet; the step is
-- running, or was re-enqueued because the worker was presumed lost and
-- nobody claimed it since). Then:
--   * a failure becomes waiting_retry or error (and fails its task); its
--     error is appended to steps.errors through weft.append_error;
--   * a success becomes complete; its children are counted down, and those
--     it makes ready become `waiting` when they are sleep, wait or workflow
--     steps (steps.wait; weft.wait_deadline; their `waiting` event tells live
--     watchers, and the orchestrators to start a workflow step's child), or are claimed for p_worker when they are in p_queues and
--     p_room has room for all of them (a chain continues without a wake-up),
--     or enqueued (with an outbox row when p_outbox); a task whose last open
--     step completed becomes complete;
--   * with p_claim_queued, the room left is filled from p_queues (the
--     PostgreSQL queue), and the consumer's waiter registration is updated
--     (weft.register_waiter: p_waiter_seq, p_waiter_known);
--   * p_expansion ({steps, edges}, with a single success): the steps a
--     decision or batch outcome creates, inserted before the countdown. The
--     caller holds the task lock and has checked the fence (src/store/finish.ts).
--
-- Rows are found by id only (`= ANY(p_ids)`), and states are compared with
-- variables (v_running, v_enqueued), never literals: `s.state = 'running'`
-- written out would let the planner prefer the steps_running partial index
-- (every running step of every worker, and its dead entries until the next
-- vacuum), which it does when the statistics are stale; a generic plan cannot
-- prove a partial index's predicate from a parameter (see weft.claim_steps).
--
-- Concurrency without a lock of its own: every decision that depends on a
-- row another finish may change at the same time (a child's countdown and
-- readiness, a task's open steps and state, the fence) is written as an
-- expression of the row's current version, which PostgreSQL re-evaluates
-- after waiting for the other writer. Rows are locked in one order in every
-- writer (the finished steps, their children by id, then their tasks by id),
-- so two finishes never deadlock.
-- requires: event_row, holds_attempt, append_error, wait_deadline
CREATE OR REPLACE FUNCTION weft.finish_steps(p_worker text, p_ids uuid[], p_successes jsonb, p_failures jsonb, p_expansion jsonb,
                                  p_queues text[], p_room integer, p_claim_queued boolean, p_outbox boolean,
                                  p_consumer text, p_channel text, p_waiter_ttl_ms integer,
                                  p_waiter_seq bigint, p_waiter_known bigint)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_events   weft.step_event[];
  v_more     weft.step_event[];
  v_fail     jsonb;
  v_failed   record;
  v_claimed  uuid[];
  v_picked   uuid[];
  v_event    weft.step_event;
  v_accepted integer := 0;
  v_n        integer;
  v_pass     integer;
  v_room     integer;
  v_task     uuid;
  v_ns       text;
  v_running  CONSTANT text := 'running';
  v_enqueued CONSTANT text := 'enqueued';
BEGIN
  IF p_claim_queued THEN
    PERFORM weft.lock_queues(p_queues, false);
  END IF;

  IF p_expansion IS NOT NULL THEN
    SELECT s.task_id, t.namespace INTO v_task, v_ns
      FROM weft.steps s JOIN weft.tasks t ON t.id = s.task_id
     WHERE s.id = ((p_successes->0)->>'id')::uuid;
    RETURN QUERY SELECT * FROM weft.insert_steps(v_task, v_ns, p_expansion->'steps', p_expansion->'edges', p_worker, p_outbox);
    UPDATE weft.tasks SET open_steps = open_steps + jsonb_array_length(p_expansion->'steps') WHERE id = v_task;
  END IF;

  -- Applied in one pass in the common case. An item not accepted may be the
  -- result of a worker presumed lost that came back before anyone else
  -- claimed its step: it holds the step again, and a second pass applies it.
  FOR v_pass IN 1..2 LOOP
    -- Failures first: a task failing in this batch releases nothing.
    IF p_failures IS NOT NULL THEN
      WITH failed AS (
        UPDATE weft.steps s
           SET state = CASE WHEN t.state = 'cancelled' THEN 'cancelled'
                            WHEN t.state = 'running' AND i.retry_ms IS NOT NULL THEN 'waiting_retry'
                            ELSE 'error' END,
               seq = s.seq + 1, failures = s.failures + 1, error = i.error,
               errors = weft.append_error(s.errors, i.error || jsonb_build_object('attempt', s.attempts)),
               run_after = CASE WHEN t.state = 'running' AND i.retry_ms IS NOT NULL
                                THEN clock_timestamp() + make_interval(secs => i.retry_ms / 1000.0) END,
               finished_at = clock_timestamp(), updated_at = clock_timestamp()
          FROM jsonb_to_recordset(p_failures) AS i(id uuid, attempt int, error jsonb, retry_ms int, reason text, duration_ms float8),
               weft.tasks t
         WHERE s.id = ANY(p_ids) AND s.id = i.id AND t.id = s.task_id AND s.state = v_running
           AND weft.holds_attempt(s.worker_id, s.attempts, s.finished_at, p_worker, i.attempt)
        RETURNING s.id, s.task_id, s.seq, s.state, s.name, s.attempts, s.run_after, s.error, t.state AS task_state,
                  i.reason, i.retry_ms, i.duration_ms),
      transitions AS (
        INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
        SELECT id, seq, task_id, 'running', state, p_worker,
               jsonb_strip_nulls(jsonb_build_object('attempt', attempts, 'duration_ms', duration_ms, 'delay_ms', retry_ms,
                                                    'reason', CASE WHEN state = 'error' THEN coalesce(reason, 'task already ended') END))
          FROM failed)
      SELECT array_agg(weft.finished_event(f.id, f.task_id, f.state, f.name, f.attempts,
                                           jsonb_strip_nulls(jsonb_build_object('run_after', f.run_after)))),
             jsonb_agg(jsonb_build_object('task', f.task_id, 'step', f.name, 'reason', f.reason, 'error', f.error) ORDER BY f.task_id)
               FILTER (WHERE f.state = 'error' AND f.task_state = 'running'),
             count(*)
        INTO v_more, v_fail, v_n
        FROM failed f;
      v_events := v_events || v_more;
      v_accepted := v_accepted + v_n;
      FOR v_failed IN SELECT x AS f FROM jsonb_array_elements(coalesce(v_fail, '[]'::jsonb)) AS x LOOP
        v_events := v_events || ARRAY(SELECT e FROM weft.fail_task((v_failed.f->>'task')::uuid, v_failed.f->>'step',
                                                                   v_failed.f->>'reason', v_failed.f->'error', p_worker) AS e);
      END LOOP;
    END IF;

    -- Successes: complete, count the children down, claim or enqueue the ready ones, complete tasks.
    IF p_successes IS NOT NULL THEN
      WITH done AS (
        UPDATE weft.steps s
           SET state = CASE WHEN t.state = 'cancelled' THEN 'cancelled' ELSE 'complete' END,
               seq = s.seq + 1, result = i.result, error = NULL, finished_at = clock_timestamp(), updated_at = clock_timestamp()
          FROM jsonb_to_recordset(p_successes) AS i(id uuid, attempt int, result jsonb, duration_ms float8), weft.tasks t
         WHERE s.id = ANY(p_ids) AND s.id = i.id AND t.id = s.task_id AND s.state = v_running
           AND weft.holds_attempt(s.worker_id, s.attempts, s.finished_at, p_worker, i.attempt)
        RETURNING s.id, s.task_id, s.seq, s.state, s.name, s.attempts, t.state AS task_state, i.duration_ms),
      released AS (
        SELECT e.to_step AS id, count(*)::int AS n
          FROM done d JOIN weft.step_edges e ON e.from_step = d.id
         WHERE d.state = 'complete' AND d.task_state = 'running'
         GROUP BY e.to_step
         ORDER BY e.to_step),
      -- Claim on release only if every released child of this worker's queues fits its room.
      fits AS (
        SELECT count(*) <= p_room AS ok FROM released r JOIN weft.steps c ON c.id = r.id WHERE c.queue = ANY(p_queues) AND c.wait IS NULL),
      children AS (
        UPDATE weft.steps c
           SET pending_parents = c.pending_parents - r.n,
               state = CASE WHEN c.state <> 'pending' OR c.pending_parents > r.n THEN c.state
                            WHEN c.wait IS NOT NULL THEN 'waiting'
                            WHEN c.queue = ANY(p_queues) AND (SELECT ok FROM fits) THEN 'running'
                            ELSE 'enqueued' END,
               seq = CASE WHEN c.state = 'pending' AND c.pending_parents = r.n THEN c.seq + 1 ELSE c.seq END,
               attempts = CASE WHEN c.state = 'pending' AND c.pending_parents = r.n AND c.wait IS NULL AND c.queue = ANY(p_queues) AND (SELECT ok FROM fits)
                               THEN c.attempts + 1 ELSE c.attempts END,
               worker_id = CASE WHEN c.state = 'pending' AND c.pending_parents = r.n AND c.wait IS NULL AND c.queue = ANY(p_queues) AND (SELECT ok FROM fits)
                                THEN p_worker ELSE c.worker_id END,
               started_at = CASE WHEN c.state = 'pending' AND c.pending_parents = r.n AND c.wait IS NULL AND c.queue = ANY(p_queues) AND (SELECT ok FROM fits)
                                 THEN clock_timestamp() ELSE c.started_at END,
               enqueued_at = CASE WHEN c.state = 'pending' AND c.pending_parents = r.n AND c.wait IS NULL THEN clock_timestamp() ELSE c.enqueued_at END,
               run_after = CASE WHEN c.state = 'pending' AND c.pending_parents = r.n AND c.wait IS NOT NULL THEN weft.wait_deadline(c.wait)
                                ELSE c.run_after END,
               updated_at = clock_timestamp()
          FROM released r
         WHERE c.id = r.id
        RETURNING c.id, c.task_id, c.seq, c.state, c.queue, c.name, c.attempts, c.pending_parents, c.run_after, c.type),
      moved AS (
        SELECT * FROM children WHERE pending_parents = 0 AND state IN ('running', 'enqueued', 'waiting')),
      transitions AS (
        INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
        SELECT id, seq, task_id, 'running', state, p_worker, jsonb_build_object('attempt', attempts, 'duration_ms', duration_ms)
          FROM done
        UNION ALL
        SELECT id, seq, task_id, 'pending', state, p_worker,
               CASE WHEN state = 'running' THEN jsonb_build_object('attempt', attempts, 'claimed', 'on release')
                    WHEN state = 'waiting' THEN jsonb_strip_nulls(jsonb_build_object('until', run_after)) END
          FROM moved),
      tasks_done AS (
        -- The task completes when this was its last open step.
        UPDATE weft.tasks t
           SET open_steps = t.open_steps - k.n,
               state = CASE WHEN t.state = 'running' AND t.open_steps = k.n THEN 'complete' ELSE t.state END,
               seq = CASE WHEN t.state = 'running' AND t.open_steps = k.n THEN t.seq + 1 ELSE t.seq END,
               completed_at = CASE WHEN t.state = 'running' AND t.open_steps = k.n THEN clock_timestamp() ELSE t.completed_at END,
               updated_at = clock_timestamp()
          FROM (SELECT d.task_id, count(*)::int AS n FROM done d WHERE d.state = 'complete' AND d.task_state = 'running'
                 GROUP BY d.task_id ORDER BY d.task_id) AS k
         WHERE t.id = k.task_id
        RETURNING t.id, t.seq, t.state, t.open_steps, t.namespace, t.name, extract(epoch FROM t.completed_at - t.created_at) * 1000 AS ms,
                  t.parent_step_id),
      task_transitions AS (
        INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id)
        SELECT id, seq, 'running', 'complete', p_worker FROM tasks_done WHERE state = 'complete' AND open_steps = 0)
      SELECT v_events || coalesce(array_agg(ev) FILTER (WHERE (ev).kind <> 'claim'), '{}'),
             coalesce(v_claimed, '{}') || coalesce(array_agg((ev).step_id) FILTER (WHERE (ev).kind = 'claim'), '{}'),
             v_accepted + count(*) FILTER (WHERE (ev).kind = 'finished')
        INTO v_events, v_claimed, v_accepted
        FROM (
          SELECT weft.finished_event(d.id, d.task_id, d.state, d.name, d.attempts) AS ev FROM done d
          UNION ALL
          -- (`claim`: claimed on release; not returned, but handed to weft.claimed_events below)
          SELECT weft.event_row('claim', m.id, m.task_id, m.state, m.queue, m.name, m.attempts, NULL, NULL)
            FROM moved m WHERE m.state = 'running'
          UNION ALL
          SELECT r FROM weft.dispatch_ready(ARRAY(SELECT weft.enqueued_event(m.id, m.task_id, m.queue, m.name, m.attempts)
                                                    FROM moved m WHERE m.state = 'enqueued'), p_outbox) AS r
          UNION ALL
          SELECT weft.waiting_event(m.id, m.task_id, m.name, m.type, m.attempts, m.run_after) FROM moved m WHERE m.state = 'waiting'
          UNION ALL
          SELECT weft.task_ended_event(t.id, 'complete', t.namespace, t.name, t.ms, t.parent_step_id)
            FROM tasks_done t WHERE t.state = 'complete' AND t.open_steps = 0) AS e;
    END IF;
    EXIT WHEN v_pass = 2 OR v_accepted >= array_length(p_ids, 1);
      WITH back AS (
        UPDATE weft.steps s SET state = 'running', seq = s.seq + 1, updated_at = clock_timestamp()
          FROM (SELECT x.id, x.attempt FROM jsonb_to_recordset(coalesce(p_successes, '[]') || coalesce(p_failures, '[]'))
                                       AS x(id uuid, attempt int)) AS i
         WHERE s.id = ANY(p_ids) AND s.id = i.id AND s.state = v_enqueued
           AND weft.holds_attempt(s.worker_id, s.attempts, s.finished_at, p_worker, i.attempt)
        RETURNING s.id, s.task_id, s.seq, s.attempts)
      INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
      SELECT id, seq, task_id, 'enqueued', 'running', p_worker,
             jsonb_build_object('attempt', attempts, 'reason', 'its worker came back with the result before anyone else claimed it')
        FROM back;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    EXIT WHEN v_n = 0;
  END LOOP;

  -- Fill the room left from the queues.
  v_room := p_room - coalesce(array_length(v_claimed, 1), 0);
  IF p_claim_queued THEN
    IF v_room > 0 THEN
      v_picked := weft.claim_steps(p_worker, weft.pick_queued(p_queues, v_room));
      v_claimed := coalesce(v_claimed, '{}') || coalesce(v_picked, '{}');
      v_room := v_room - coalesce(array_length(v_picked, 1), 0);
    END IF;
    PERFORM weft.register_waiter(p_queues, p_consumer, p_channel, p_waiter_ttl_ms, v_room > 0, p_waiter_seq, p_waiter_known);
  END IF;

  -- Whether anyone watches these tasks live (weft_step notifications): one probe of a tiny table.
  IF EXISTS (SELECT 1 FROM weft.task_watchers) THEN
    v_events := ARRAY(SELECT weft.event_row(e.kind, e.step_id, e.task_id, e.state, e.queue, e.name, e.attempt, e.detail,
                                            EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = e.task_id))
                        FROM unnest(v_events) AS e);
  END IF;
  FOREACH v_event IN ARRAY coalesce(v_events, '{}') LOOP
    RETURN NEXT v_event;
  END LOOP;
  IF v_claimed IS NOT NULL AND array_length(v_claimed, 1) > 0 THEN
    RETURN QUERY SELECT * FROM weft.claimed_events(v_claimed);
  END IF;
END $fn$;
