-- The step boundary at the physical floor (issue 8).
--
-- Until 001 a step crossed an orchestrator hop: the worker wrote its result,
-- a report message woke an orchestrator, which accepted it and dispatched the
-- children through the queue table. From here on the worker that finishes a
-- step does all of it in one statement, weft.finish_steps: it records the
-- result and the transition, counts down the children, claims the ones it can
-- run itself (a chain continues without a wake-up or another round trip),
-- enqueues the rest, and completes the task when its last step completes. The
-- orchestrator keeps task creation and the sweeps.
--
-- The PostgreSQL queue is now the steps table itself: a step in state
-- `enqueued` is a message of its queue (`step.<namespace>.<runtime>`), and a
-- claim is the state change. With RabbitMQ, statements that enqueue steps
-- write their messages to weft.outbox in the same transaction; the process
-- publishes them after COMMIT and deletes them, and a sweep republishes what a
-- crash left behind.
--
-- Every hot function pins how its statements are planned: jit off, generic
-- plans (planned once per connection, not at every call: a custom plan of
-- these statements costs more than running them), and plain index scans
-- with nested loops only (a bitmap scan would AND in a whole partial index). They all touch a handful of rows found by key, and a
-- plan made while a table was small (or never analysed, with autovacuum off)
-- must never be a scan of weft.steps per step, whatever the statistics say.
--
-- Never edit this file once it has landed: add the next number instead.

-- ---------------------------------------------------------------------------
-- 1. Columns
-- ---------------------------------------------------------------------------

ALTER TABLE weft.steps
  -- The queue a ready step waits in: 'step.' || namespace || '.' || runtime.
  ADD COLUMN queue    text,
  -- Failed runs of the handler; the retry budget (max_attempts) counts these.
  ADD COLUMN failures integer NOT NULL DEFAULT 0,
  -- Runs lost with their worker (killed, or stopped heartbeating); they do not
  -- use the retry budget, but a step that keeps losing its worker is stopped.
  ADD COLUMN losses   integer NOT NULL DEFAULT 0,
  -- Every failed attempt's error, oldest first (the latest is also `error`).
  ADD COLUMN errors   jsonb,
  DROP COLUMN lease_expires_at;

-- Steps of the task not yet complete; the task completes when it reaches 0.
ALTER TABLE weft.tasks ADD COLUMN open_steps integer;

UPDATE weft.steps s SET queue = 'step.' || t.namespace || '.' || s.runtime
  FROM weft.tasks t
 WHERE t.id = s.task_id AND s.state IN ('pending', 'enqueued', 'running', 'succeeded', 'failed', 'waiting_retry');
UPDATE weft.tasks t SET open_steps = (SELECT count(*) FROM weft.steps s WHERE s.task_id = t.id AND s.state <> 'complete')
 WHERE t.state IN ('pending', 'running');

-- Results reported under 001 but not yet accepted have no path any more:
-- close them on ended tasks, run them again on running ones (at-least-once).
WITH moved AS (
  UPDATE weft.steps s SET state = CASE s.state WHEN 'succeeded' THEN 'complete' ELSE 'error' END,
         seq = s.seq + 1, updated_at = clock_timestamp()
    FROM weft.tasks t
   WHERE t.id = s.task_id AND t.state NOT IN ('pending', 'running') AND s.state IN ('succeeded', 'failed')
  RETURNING s.id, s.task_id, s.seq, s.state)
INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
SELECT id, seq, task_id, CASE state WHEN 'complete' THEN 'succeeded' ELSE 'failed' END, state, 'migration-002',
       '{"reason":"reported before migration 002; the task had ended"}'::jsonb FROM moved;
WITH moved AS (
  UPDATE weft.steps SET state = 'failed', seq = seq + 1, updated_at = clock_timestamp()
   WHERE state = 'succeeded' RETURNING id, task_id, seq)
INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
SELECT id, seq, task_id, 'succeeded', 'failed', 'migration-002', '{"reason":"reported before migration 002; run again"}'::jsonb FROM moved;
WITH moved AS (
  UPDATE weft.steps SET state = 'waiting_retry', seq = seq + 1, run_after = clock_timestamp(), updated_at = clock_timestamp()
   WHERE state = 'failed' RETURNING id, task_id, seq)
INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
SELECT id, seq, task_id, 'failed', 'waiting_retry', 'migration-002', '{"reason":"reported before migration 002; run again"}'::jsonb FROM moved;

-- ---------------------------------------------------------------------------
-- 2. Transitions: the new moves, and legality checked without locking
-- ---------------------------------------------------------------------------

INSERT INTO weft.step_transition_rules (from_state, to_state) VALUES
  -- released by its last parent's finish and claimed in the same statement
  ('pending', 'running'),
  -- the worker that finishes a step applies the outcome itself
  ('running', 'complete'), ('running', 'waiting_retry'), ('running', 'error'),
  -- its worker was lost (killed, or stopped heartbeating): run it again
  ('running', 'enqueued'),
  -- ... unless that worker comes back with the result before anyone else claimed the step
  ('enqueued', 'complete'), ('enqueued', 'waiting_retry'), ('enqueued', 'error');

-- A foreign key from every transition row to the rule tables made PostgreSQL
-- lock a rule row (FOR KEY SHARE) per transition: every step of every task
-- locked the same few rows, which costs a WAL record and, under concurrency,
-- a MultiXact each time. The rules are now compiled from the same tables into
-- a function that a CHECK constraint calls. The template foreign key on tasks
-- had the same cost (every
-- task locked its template row); weft.create_task checks the template instead
-- (templates are never deleted). Transition rows are removed by the retention
-- sweep, not by cascade.
ALTER TABLE weft.step_transitions
  DROP CONSTRAINT step_transitions_from_state_to_state_fkey,
  DROP CONSTRAINT step_transitions_step_id_fkey;
ALTER TABLE weft.task_transitions
  DROP CONSTRAINT task_transitions_from_state_to_state_fkey,
  DROP CONSTRAINT task_transitions_task_id_fkey;
ALTER TABLE weft.tasks DROP CONSTRAINT tasks_namespace_name_version_fkey;
-- Transitions are read by step (the primary key); per task through weft.steps.
DROP INDEX weft.step_transitions_task;
-- Steps and edges are only ever written by weft.insert_steps, in the statement
-- that writes their task (or a step of it), and deleted by the retention sweep,
-- which deletes them explicitly: the foreign keys cost a lookup per row written
-- (4 for a step, 3 for an edge; half the CPU of creating a task) and guard
-- nothing those two functions do not.
ALTER TABLE weft.steps DROP CONSTRAINT steps_task_id_fkey;
ALTER TABLE weft.step_edges
  DROP CONSTRAINT step_edges_task_id_fkey,
  DROP CONSTRAINT step_edges_from_step_fkey,
  DROP CONSTRAINT step_edges_to_step_fkey;

-- (Re)build weft.legal_step_transition and weft.legal_task_transition from
-- the rule tables. A later migration that changes a rule table calls it again.
-- PL/pgSQL, not SQL: a CHECK constraint calling a SQL function re-parses the
-- function's text to inline it in every statement that writes a transition,
-- and a CHECK holding the pairs as a constant array is deserialised by every
-- such statement; a PL/pgSQL call is compiled once per connection.
CREATE FUNCTION weft.compile_transition_rules() RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  t text;
  pairs text;
BEGIN
  FOREACH t IN ARRAY ARRAY['step', 'task'] LOOP
    EXECUTE format('SELECT string_agg(format(%L, from_state, to_state), %L ORDER BY from_state, to_state) FROM weft.%I',
                   '(%L, %L)', ', ', t || '_transition_rules') INTO pairs;
    EXECUTE format($sql$CREATE OR REPLACE FUNCTION weft.%I(from_state text, to_state text) RETURNS boolean
                        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
                        AS $body$ BEGIN RETURN (from_state, to_state) IN (%s); END $body$$sql$,
                   'legal_' || t || '_transition', pairs);
  END LOOP;
END $fn$;
SELECT weft.compile_transition_rules();

-- NOT VALID: the rows already there were checked by the foreign keys.
ALTER TABLE weft.step_transitions ADD CONSTRAINT step_transitions_legal
  CHECK (from_state IS NULL OR weft.legal_step_transition(from_state, to_state)) NOT VALID;
ALTER TABLE weft.task_transitions ADD CONSTRAINT task_transitions_legal
  CHECK (from_state IS NULL OR weft.legal_task_transition(from_state, to_state)) NOT VALID;

-- ---------------------------------------------------------------------------
-- 3. Indexes on live states only, so they stay small as history grows
-- ---------------------------------------------------------------------------

DROP INDEX weft.steps_reported;
DROP INDEX weft.steps_enqueued;
-- (steps_lease went with the lease_expires_at column: liveness is now the worker's process heartbeat.)
-- The PostgreSQL queue: ready steps of a queue, oldest first.
CREATE INDEX steps_ready ON weft.steps (queue, enqueued_at) WHERE state = 'enqueued';
-- The lease sweep: running steps by worker.
CREATE INDEX steps_running ON weft.steps (worker_id) WHERE state = 'running';
-- (steps_retry_due on run_after WHERE state = 'waiting_retry' stays.)

-- ---------------------------------------------------------------------------
-- 4. Dispatch: waiting consumers, the broker outbox, live watchers
-- ---------------------------------------------------------------------------

DROP FUNCTION weft.accept_success(uuid, text, boolean);
DROP TABLE weft.queue_messages;
DROP TABLE weft.dead_letters;

-- PostgreSQL queue consumers that found their queues empty and wait for a
-- wake-up. A statement that enqueues steps takes one waiter per ready step
-- (after its COMMIT, see weft.wake) and notifies only that consumer: no herd.
-- Unlogged: after a crash consumers simply register again on their next poll.
CREATE UNLOGGED TABLE weft.queue_waiters (
  queue      text        NOT NULL,
  consumer   text        NOT NULL,
  channel    text        NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (queue, consumer)
);

-- RabbitMQ: messages for steps enqueued by a committed statement, published
-- after COMMIT (with confirms) and then deleted; a sweep republishes rows a
-- crash left behind. A duplicate message is harmless: the claim is a
-- compare-and-set.
CREATE TABLE weft.outbox (
  id         bigserial   PRIMARY KEY,
  queue      text        NOT NULL,
  body       jsonb       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
ALTER TABLE weft.outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500,
                             autovacuum_vacuum_cost_delay = 0);

-- Tasks someone is watching live (the dashboard): workers tell their step
-- changes through NOTIFY weft_step. Unlogged, expiring: watchers renew.
CREATE UNLOGGED TABLE weft.task_watchers (
  task_id    uuid        NOT NULL,
  watcher    text        NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (task_id, watcher)
);

-- ---------------------------------------------------------------------------
-- 5. The statements of the step boundary
-- ---------------------------------------------------------------------------

-- One row of what a statement did, for the process that ran it to act on
-- after COMMIT. `kind`:
--   claimed   a step this worker now runs (detail, context and dependency_results filled in)
--   enqueued  a step made ready in `queue` and not claimed (PostgreSQL queue: wake a consumer)
--   outbox    a message to publish to `queue` (detail: {"id": outbox id, "body": ...})
--   finished  a step whose outcome was applied; `state` is its new state
--             (complete, waiting_retry, error, cancelled); detail.run_after for a retry
--   task_ended a task that ended (state complete or error); detail: {namespace, name, ms}
CREATE TYPE weft.step_event AS (
  kind               text,
  step_id            uuid,
  task_id            uuid,
  state              text,
  queue              text,
  name               text,
  attempt            integer,
  detail             jsonb,
  context            text,
  dependency_results text,
  watched            boolean
);

-- Insert planned steps with their first transitions and edges; those with no
-- open parent are `enqueued` at once (events: enqueued, or outbox when
-- p_outbox). Used by task creation and by decision and batch expansion; the
-- caller keeps tasks.open_steps.
CREATE FUNCTION weft.insert_steps(p_task uuid, p_namespace text, p_steps jsonb, p_edges jsonb, p_pid text, p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY
  WITH new_steps AS (
    INSERT INTO weft.steps (id, task_id, name, template_step, type, runtime, handler, queue, state, seq,
                            max_attempts, timeout_ms, pending_parents, inputs, batch, enqueued_at)
    SELECT x.id, p_task, x.name, x.template_step, x.type, x.runtime, x.handler, 'step.' || p_namespace || '.' || x.runtime,
           CASE WHEN x.pending_parents = 0 THEN 'enqueued' ELSE 'pending' END,
           CASE WHEN x.pending_parents = 0 THEN 2 ELSE 1 END,
           x.max_attempts, x.timeout_ms, x.pending_parents, coalesce(x.inputs, '{}'::jsonb), x.batch,
           CASE WHEN x.pending_parents = 0 THEN clock_timestamp() END
      FROM jsonb_to_recordset(p_steps) AS x(id uuid, name text, template_step text, type text, runtime text, handler text,
                                            max_attempts int, timeout_ms int, pending_parents int, inputs jsonb, batch jsonb)
    RETURNING id, task_id, state, queue, name),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id)
    SELECT id, 1, task_id, NULL, 'pending', p_pid FROM new_steps
    UNION ALL
    SELECT id, 2, task_id, 'pending', 'enqueued', p_pid FROM new_steps WHERE state = 'enqueued'),
  edges AS (
    INSERT INTO weft.step_edges (task_id, from_step, to_step)
    SELECT p_task, e."from", e."to" FROM jsonb_to_recordset(p_edges) AS e("from" uuid, "to" uuid)),
  messages AS (
    INSERT INTO weft.outbox (queue, body)
    SELECT n.queue, jsonb_build_object('task_id', n.task_id, 'step_id', n.id) FROM new_steps n
     WHERE n.state = 'enqueued' AND p_outbox
    RETURNING id, queue, body)
  SELECT 'enqueued', n.id, n.task_id, 'enqueued', n.queue, n.name, NULL::int, NULL::jsonb, NULL::text, NULL::text, NULL::boolean
    FROM new_steps n WHERE n.state = 'enqueued' AND NOT p_outbox
  UNION ALL
  SELECT 'outbox', (m.body->>'step_id')::uuid, (m.body->>'task_id')::uuid, 'enqueued', m.queue, NULL, NULL,
         jsonb_build_object('id', m.id, 'body', m.body), NULL, NULL, NULL
    FROM messages m;
END $fn$;

-- A task, its transitions, its initial steps and edges, and the dispatch of
-- the ready ones: one round trip, one commit. Raises foreign_key_violation
-- for an unregistered template version and unique_violation
-- (tasks_idempotency_key_key) for a repeated idempotency key.
CREATE FUNCTION weft.create_task(p_task uuid, p_namespace text, p_name text, p_version text, p_context jsonb,
                                 p_idempotency_key text, p_steps jsonb, p_edges jsonb, p_pid text, p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
BEGIN
  PERFORM 1 FROM weft.templates WHERE namespace = p_namespace AND name = p_name AND version = p_version;
  IF NOT FOUND THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('no template %s/%s@%s is registered', p_namespace, p_name, p_version),
      HINT = 'register it first (weft orchestrator --templates DIR, or POST /v1/templates)';
  END IF;
  INSERT INTO weft.tasks (id, namespace, name, version, state, seq, context, idempotency_key, open_steps)
  VALUES (p_task, p_namespace, p_name, p_version, 'running', 2, p_context, p_idempotency_key, jsonb_array_length(p_steps));
  INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id)
  VALUES (p_task, 1, NULL, 'pending', p_pid), (p_task, 2, 'pending', 'running', p_pid);
  RETURN QUERY SELECT * FROM weft.insert_steps(p_task, p_namespace, p_steps, p_edges, p_pid, p_outbox);
END $fn$;

-- What a worker needs to run the steps it just claimed: the step, the task's
-- context and its parents' results, as JSON text (passed to Python and Ruby
-- as is, so big integers stay exact).
-- (PL/pgSQL, not SQL: a SQL function that cannot be inlined is planned again at every call.)
CREATE FUNCTION weft.claimed_events(p_ids uuid[]) RETURNS SETOF weft.step_event
LANGUAGE plpgsql STABLE AS $fn$
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
   WHERE s.id = ANY(p_ids) AND s.state = 'running';
END $fn$;

-- The wake-up handshake. A consumer holds a shared lock on each of its queues
-- from before the snapshot of the claim that may register it as a waiter
-- until that commits; weft.wake takes the same locks exclusively before it
-- picks waiters. So either the pick sees the registration (and wakes the
-- consumer), or the consumer's claim runs after the enqueue committed (and
-- finds the step): no wake-up is lost, and nobody claims twice to be sure.
-- Advisory locks live in memory (no WAL); keys are sorted so lockers of
-- several queues cannot deadlock.
CREATE FUNCTION weft.lock_queues(p_queues text[], p_exclusive boolean) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF p_exclusive THEN
    PERFORM pg_advisory_xact_lock(2003199092, k) FROM (SELECT DISTINCT hashtext(q) AS k FROM unnest(p_queues) AS q ORDER BY 1) AS x;
  ELSE
    PERFORM pg_advisory_xact_lock_shared(2003199092, k) FROM (SELECT DISTINCT hashtext(q) AS k FROM unnest(p_queues) AS q ORDER BY 1) AS x;
  END IF;
END $fn$;

-- Claim up to p_limit ready steps of p_queues, oldest first, for p_worker.
-- A claim that comes back short registers the consumer as a waiter of every
-- queue (it will be woken by the next statement that enqueues a step there);
-- a full one removes the registration.
CREATE FUNCTION weft.claim_queued(p_worker text, p_queues text[], p_limit integer,
                                  p_consumer text, p_channel text, p_waiter_ttl_ms integer)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_ids uuid[];
BEGIN
  PERFORM weft.lock_queues(p_queues, false);
  IF p_limit > 0 THEN
    WITH picked AS (
      SELECT m.id
        FROM unnest(p_queues) AS q(name),
             LATERAL (SELECT id FROM weft.steps
                       WHERE state = 'enqueued' AND queue = q.name
                       ORDER BY enqueued_at LIMIT p_limit FOR UPDATE SKIP LOCKED) AS m
       LIMIT p_limit),
    claimed AS (
      UPDATE weft.steps s
         SET state = 'running', seq = s.seq + 1, attempts = s.attempts + 1, worker_id = p_worker,
             started_at = clock_timestamp(), finished_at = NULL, updated_at = clock_timestamp()
        FROM picked
       WHERE s.id = picked.id AND s.state = 'enqueued'
      RETURNING s.id, s.task_id, s.seq, s.attempts),
    transitions AS (
      INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
      SELECT id, seq, task_id, 'enqueued', 'running', p_worker, jsonb_build_object('attempt', attempts) FROM claimed)
    SELECT array_agg(id) INTO v_ids FROM claimed;
  END IF;
  PERFORM weft.register_waiter(p_queues, p_consumer, p_channel, p_waiter_ttl_ms,
                               coalesce(array_length(v_ids, 1), 0) < p_limit);
  IF v_ids IS NOT NULL THEN
    RETURN QUERY SELECT * FROM weft.claimed_events(v_ids);
  END IF;
END $fn$;

CREATE FUNCTION weft.register_waiter(p_queues text[], p_consumer text, p_channel text, p_ttl_ms integer, p_waiting boolean)
RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF p_consumer IS NULL THEN
    RETURN;
  ELSIF p_waiting THEN
    INSERT INTO weft.queue_waiters (queue, consumer, channel, expires_at)
    SELECT q, p_consumer, p_channel, clock_timestamp() + make_interval(secs => p_ttl_ms / 1000.0) FROM unnest(p_queues) AS q
    ON CONFLICT (queue, consumer) DO UPDATE SET channel = excluded.channel, expires_at = excluded.expires_at;
  ELSE
    DELETE FROM weft.queue_waiters WHERE queue = ANY(p_queues) AND consumer = p_consumer;
  END IF;
END $fn$;

-- Claim these steps (RabbitMQ deliveries name them) for p_worker; a step that
-- is not `enqueued` any more is skipped (a duplicate or stale message).
CREATE FUNCTION weft.claim_ids(p_worker text, p_ids uuid[]) RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_ids uuid[];
BEGIN
  WITH picked AS (
    SELECT id FROM weft.steps WHERE id = ANY(p_ids) AND state = 'enqueued' FOR UPDATE SKIP LOCKED),
  claimed AS (
    UPDATE weft.steps s
       SET state = 'running', seq = s.seq + 1, attempts = s.attempts + 1, worker_id = p_worker,
           started_at = clock_timestamp(), finished_at = NULL, updated_at = clock_timestamp()
      FROM picked
     WHERE s.id = picked.id AND s.state = 'enqueued'
    RETURNING s.id, s.task_id, s.seq, s.attempts),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'enqueued', 'running', p_worker, jsonb_build_object('attempt', attempts) FROM claimed)
  SELECT array_agg(id) INTO v_ids FROM claimed;
  IF v_ids IS NOT NULL THEN
    RETURN QUERY SELECT * FROM weft.claimed_events(v_ids);
  END IF;
END $fn$;

-- End a running task in error because `p_step` failed for good: every step
-- not started yet is cancelled; running ones finish and are recorded, but
-- nothing new is dispatched. Steps are locked in id order, then the task (the
-- order of every writer, see weft.finish_steps).
CREATE FUNCTION weft.fail_task(p_task uuid, p_step text, p_reason text, p_error jsonb, p_pid text)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY
  WITH doomed AS (
    SELECT id, state FROM weft.steps
     WHERE task_id = p_task AND state IN ('pending', 'enqueued', 'waiting_retry') ORDER BY id FOR UPDATE),
  cancelled AS (
    UPDATE weft.steps s SET state = 'cancelled', seq = s.seq + 1, updated_at = clock_timestamp()
      FROM doomed d WHERE s.id = d.id
    RETURNING s.id, s.task_id, s.seq, d.state AS from_state),
  cancelled_transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, from_state, 'cancelled', p_pid, '{"reason":"task failed"}'::jsonb FROM cancelled),
  task AS (
    UPDATE weft.tasks SET state = 'error', seq = seq + 1, updated_at = clock_timestamp(), completed_at = clock_timestamp(),
           error = jsonb_build_object('step', p_step, 'reason', p_reason, 'error', p_error)
     WHERE id = p_task AND state IN ('pending', 'running')
    RETURNING id, seq, namespace, name, extract(epoch FROM completed_at - created_at) * 1000 AS ms),
  task_transition AS (
    INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id, metadata)
    SELECT id, seq, 'running', 'error', p_pid, jsonb_build_object('step', p_step, 'reason', p_reason) FROM task)
  SELECT 'task_ended', NULL::uuid, t.id, 'error', NULL, NULL, NULL::int,
         jsonb_build_object('namespace', t.namespace, 'name', t.name, 'ms', t.ms), NULL, NULL, NULL::boolean
    FROM task t;
END $fn$;

-- A worker reports the steps it finished and, in the same statement and
-- commit, moves their tasks on:
--   p_successes  [{id, attempt, result, duration_ms}]
--   p_failures   [{id, attempt, error, retry_ms, reason, duration_ms}]; the
--                worker has applied the retry policy: retry_ms set means
--                retry after that delay, null means fail the task for `reason`
--   p_ids        the ids of both, so every statement finds its rows by key
-- Each item is accepted only from the attempt that holds the step (fencing:
-- attempts = attempt, worker_id = p_worker, not finished yet; the step is
-- running, or was re-enqueued because the worker was presumed lost and
-- nobody claimed it since). Then:
--   * a failure becomes waiting_retry or error (and fails its task);
--   * a success becomes complete; its children are counted down, and those
--     it makes ready are claimed for p_worker when they are in p_queues and
--     p_room has room for all of them (a chain continues without a wake-up),
--     or enqueued (with an outbox row when p_outbox); a task whose last open
--     step completed becomes complete;
--   * with p_claim_queued, the room left is filled from p_queues (the
--     PostgreSQL queue), and the consumer's waiter registration is updated;
--   * p_expansion ({steps, edges}, with a single success): the steps a
--     decision or batch outcome creates, inserted before the countdown. The
--     caller holds the task lock and has checked the fence (src/store/finish.ts).
--
-- Rows are found by id only (`= ANY(p_ids)`): the fence compares worker_id
-- with IS NOT DISTINCT FROM, which no index can serve, so the planner cannot
-- prefer the steps_running index, whose dead entries (every step a worker
-- ever ran, until the next vacuum) a scan would walk at every finish.
--
-- Concurrency without a lock of its own: every decision that depends on a
-- row another finish may change at the same time (a child's countdown and
-- readiness, a task's open steps and state, the fence) is written as an
-- expression of the row's current version, which PostgreSQL re-evaluates
-- after waiting for the other writer. Rows are locked in one order in every
-- writer (the finished steps, their children by id, then their tasks by id),
-- so two finishes never deadlock.
CREATE FUNCTION weft.finish_steps(p_worker text, p_ids uuid[], p_successes jsonb, p_failures jsonb, p_expansion jsonb,
                                  p_queues text[], p_room integer, p_claim_queued boolean, p_outbox boolean,
                                  p_consumer text, p_channel text, p_waiter_ttl_ms integer)
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
               errors = coalesce(s.errors, '[]'::jsonb) || jsonb_build_array(i.error || jsonb_build_object('attempt', s.attempts)),
               run_after = CASE WHEN t.state = 'running' AND i.retry_ms IS NOT NULL
                                THEN clock_timestamp() + make_interval(secs => i.retry_ms / 1000.0) END,
               finished_at = clock_timestamp(), updated_at = clock_timestamp()
          FROM jsonb_to_recordset(p_failures) AS i(id uuid, attempt int, error jsonb, retry_ms int, reason text, duration_ms float8),
               weft.tasks t
         WHERE s.id = ANY(p_ids) AND s.id = i.id AND t.id = s.task_id AND s.state = 'running'
           AND s.attempts = i.attempt AND s.worker_id IS NOT DISTINCT FROM p_worker AND s.finished_at IS NULL
        RETURNING s.id, s.task_id, s.seq, s.state, s.name, s.attempts, s.run_after, s.error, t.state AS task_state,
                  i.reason, i.retry_ms, i.duration_ms),
      transitions AS (
        INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
        SELECT id, seq, task_id, 'running', state, p_worker,
               jsonb_strip_nulls(jsonb_build_object('attempt', attempts, 'duration_ms', duration_ms, 'delay_ms', retry_ms,
                                                    'reason', CASE WHEN state = 'error' THEN coalesce(reason, 'task already ended') END))
          FROM failed)
      SELECT array_agg(ROW('finished', f.id, f.task_id, f.state, NULL, f.name, f.attempts,
                           jsonb_strip_nulls(jsonb_build_object('run_after', f.run_after)), NULL, NULL, NULL)::weft.step_event),
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
         WHERE s.id = ANY(p_ids) AND s.id = i.id AND t.id = s.task_id AND s.state = 'running'
           AND s.attempts = i.attempt AND s.worker_id IS NOT DISTINCT FROM p_worker AND s.finished_at IS NULL
        RETURNING s.id, s.task_id, s.seq, s.state, s.name, s.attempts, t.state AS task_state, i.duration_ms),
      released AS (
        SELECT e.to_step AS id, count(*)::int AS n
          FROM done d JOIN weft.step_edges e ON e.from_step = d.id
         WHERE d.state = 'complete' AND d.task_state = 'running'
         GROUP BY e.to_step
         ORDER BY e.to_step),
      -- Claim on release only if every released child of this worker's queues fits its room.
      fits AS (
        SELECT count(*) <= p_room AS ok FROM released r JOIN weft.steps c ON c.id = r.id WHERE c.queue = ANY(p_queues)),
      children AS (
        UPDATE weft.steps c
           SET pending_parents = c.pending_parents - r.n,
               state = CASE WHEN c.state <> 'pending' OR c.pending_parents > r.n THEN c.state
                            WHEN c.queue = ANY(p_queues) AND (SELECT ok FROM fits) THEN 'running'
                            ELSE 'enqueued' END,
               seq = CASE WHEN c.state = 'pending' AND c.pending_parents = r.n THEN c.seq + 1 ELSE c.seq END,
               attempts = CASE WHEN c.state = 'pending' AND c.pending_parents = r.n AND c.queue = ANY(p_queues) AND (SELECT ok FROM fits)
                               THEN c.attempts + 1 ELSE c.attempts END,
               worker_id = CASE WHEN c.state = 'pending' AND c.pending_parents = r.n AND c.queue = ANY(p_queues) AND (SELECT ok FROM fits)
                                THEN p_worker ELSE c.worker_id END,
               started_at = CASE WHEN c.state = 'pending' AND c.pending_parents = r.n AND c.queue = ANY(p_queues) AND (SELECT ok FROM fits)
                                 THEN clock_timestamp() ELSE c.started_at END,
               enqueued_at = CASE WHEN c.state = 'pending' AND c.pending_parents = r.n THEN clock_timestamp() ELSE c.enqueued_at END,
               updated_at = clock_timestamp()
          FROM released r
         WHERE c.id = r.id
        RETURNING c.id, c.task_id, c.seq, c.state, c.queue, c.name, c.attempts, c.pending_parents),
      moved AS (
        SELECT * FROM children WHERE pending_parents = 0 AND state IN ('running', 'enqueued')),
      transitions AS (
        INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
        SELECT id, seq, task_id, 'running', state, p_worker, jsonb_build_object('attempt', attempts, 'duration_ms', duration_ms)
          FROM done
        UNION ALL
        SELECT id, seq, task_id, 'pending', state, p_worker,
               CASE WHEN state = 'running' THEN jsonb_build_object('attempt', attempts, 'claimed', 'on release') END
          FROM moved),
      messages AS (
        INSERT INTO weft.outbox (queue, body)
        SELECT queue, jsonb_build_object('task_id', task_id, 'step_id', id) FROM moved WHERE state = 'enqueued' AND p_outbox
        RETURNING id, queue, body),
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
        RETURNING t.id, t.seq, t.state, t.open_steps, t.namespace, t.name, extract(epoch FROM t.completed_at - t.created_at) * 1000 AS ms),
      task_transitions AS (
        INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id)
        SELECT id, seq, 'running', 'complete', p_worker FROM tasks_done WHERE state = 'complete' AND open_steps = 0)
      SELECT v_events || coalesce(array_agg(ev) FILTER (WHERE (ev).kind <> 'claim'), '{}'),
             coalesce(v_claimed, '{}') || coalesce(array_agg((ev).step_id) FILTER (WHERE (ev).kind = 'claim'), '{}'),
             v_accepted + count(*) FILTER (WHERE (ev).kind = 'finished')
        INTO v_events, v_claimed, v_accepted
        FROM (
          SELECT ROW('finished', d.id, d.task_id, d.state, NULL, d.name, d.attempts, NULL, NULL, NULL, NULL)::weft.step_event AS ev
            FROM done d
          UNION ALL
          SELECT ROW(CASE m.state WHEN 'running' THEN 'claim' ELSE 'enqueued' END, m.id, m.task_id, m.state, m.queue, m.name,
                     m.attempts, NULL, NULL, NULL, NULL)::weft.step_event
            FROM moved m WHERE NOT (m.state = 'enqueued' AND p_outbox)
          UNION ALL
          SELECT ROW('outbox', (o.body->>'step_id')::uuid, (o.body->>'task_id')::uuid, 'enqueued', o.queue, NULL, NULL,
                     jsonb_build_object('id', o.id, 'body', o.body), NULL, NULL, NULL)::weft.step_event FROM messages o
          UNION ALL
          SELECT ROW('task_ended', NULL, t.id, 'complete', NULL, NULL, NULL,
                     jsonb_build_object('namespace', t.namespace, 'name', t.name, 'ms', t.ms), NULL, NULL, NULL)::weft.step_event
            FROM tasks_done t WHERE t.state = 'complete' AND t.open_steps = 0) AS e;
    END IF;
    EXIT WHEN v_pass = 2 OR v_accepted >= array_length(p_ids, 1);
      WITH back AS (
        UPDATE weft.steps s SET state = 'running', seq = s.seq + 1, updated_at = clock_timestamp()
          FROM (SELECT x.id, x.attempt FROM jsonb_to_recordset(coalesce(p_successes, '[]') || coalesce(p_failures, '[]'))
                                       AS x(id uuid, attempt int)) AS i
         WHERE s.id = ANY(p_ids) AND s.id = i.id AND s.state = 'enqueued' AND s.attempts = i.attempt
           AND s.worker_id IS NOT DISTINCT FROM p_worker AND s.finished_at IS NULL
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
      WITH picked AS (
        SELECT m.id
          FROM unnest(p_queues) AS q(name),
               LATERAL (SELECT id FROM weft.steps
                         WHERE state = 'enqueued' AND queue = q.name
                         ORDER BY enqueued_at LIMIT v_room FOR UPDATE SKIP LOCKED) AS m
         LIMIT v_room),
      claimed AS (
        UPDATE weft.steps s
           SET state = 'running', seq = s.seq + 1, attempts = s.attempts + 1, worker_id = p_worker,
               started_at = clock_timestamp(), finished_at = NULL, updated_at = clock_timestamp()
          FROM picked
         WHERE s.id = picked.id AND s.state = 'enqueued'
        RETURNING s.id, s.task_id, s.seq, s.attempts),
      transitions AS (
        INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
        SELECT id, seq, task_id, 'enqueued', 'running', p_worker, jsonb_build_object('attempt', attempts) FROM claimed)
      SELECT array_agg(id) INTO v_picked FROM claimed;
      v_claimed := coalesce(v_claimed, '{}') || coalesce(v_picked, '{}');
      v_room := v_room - coalesce(array_length(v_picked, 1), 0);
    END IF;
    PERFORM weft.register_waiter(p_queues, p_consumer, p_channel, p_waiter_ttl_ms, v_room > 0);
  END IF;

  -- Whether anyone watches these tasks live (weft_step notifications): one probe of a tiny table.
  IF EXISTS (SELECT 1 FROM weft.task_watchers) THEN
    v_events := ARRAY(SELECT ROW(e.kind, e.step_id, e.task_id, e.state, e.queue, e.name, e.attempt, e.detail, e.context,
                                 e.dependency_results,
                                 EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = e.task_id))::weft.step_event
                        FROM unnest(v_events) AS e);
  END IF;
  FOREACH v_event IN ARRAY coalesce(v_events, '{}') LOOP
    RETURN NEXT v_event;
  END LOOP;
  IF v_claimed IS NOT NULL AND array_length(v_claimed, 1) > 0 THEN
    RETURN QUERY SELECT * FROM weft.claimed_events(v_claimed);
  END IF;
END $fn$;

-- After the COMMIT of a statement that enqueued steps (and in the same round
-- trip as its other notifications): take one waiting consumer per ready step
-- of each queue (the most recently registered first), delete their
-- registrations and NOTIFY each on its channel; consumers on p_local_channel
-- are returned instead, for the caller to wake in-process. p_channels and
-- p_payloads are other notifications to send (task ends, live step changes).
-- Runs after the commit, never inside it (PostgreSQL commits notifying
-- transactions one at a time); see weft.lock_queues for why no wake-up is lost.
CREATE FUNCTION weft.wake(p_queues text[], p_counts integer[], p_local_channel text, p_channels text[], p_payloads text[])
RETURNS TABLE (consumer text, channel text)
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  r        record;
  v_picked jsonb;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  IF p_queues IS NOT NULL THEN
    PERFORM weft.lock_queues(p_queues, true);
  END IF;
  WITH wanted AS (SELECT w.q, w.n FROM unnest(p_queues, p_counts) AS w(q, n)),
  picked AS (
    SELECT p.queue, p.consumer, p.channel
      FROM wanted,
           LATERAL (SELECT qw.queue, qw.consumer, qw.channel FROM weft.queue_waiters qw
                     WHERE qw.queue = wanted.q AND qw.expires_at > clock_timestamp()
                     ORDER BY qw.expires_at DESC LIMIT wanted.n FOR UPDATE SKIP LOCKED) AS p),
  gone AS (
    DELETE FROM weft.queue_waiters qw USING picked p
     WHERE qw.queue = p.queue AND qw.consumer = p.consumer
    RETURNING qw.consumer, qw.channel)
  SELECT coalesce(jsonb_agg(DISTINCT jsonb_build_object('consumer', g.consumer, 'channel', g.channel)), '[]'::jsonb)
    INTO v_picked FROM gone g;
  FOR r IN SELECT x->>'consumer' AS consumer, x->>'channel' AS channel FROM jsonb_array_elements(v_picked) AS x LOOP
    IF r.channel = p_local_channel THEN
      consumer := r.consumer;
      channel := r.channel;
      RETURN NEXT;
    ELSE
      PERFORM pg_notify(r.channel, r.consumer);
    END IF;
  END LOOP;
  IF p_channels IS NOT NULL THEN
    PERFORM pg_notify(c, p) FROM unnest(p_channels, p_payloads) AS n(c, p);
  END IF;
END $fn$;

-- waiting_retry → enqueued for steps whose backoff has elapsed (cancelled
-- instead when their task is no longer running).
CREATE FUNCTION weft.dispatch_due_retries(p_pid text, p_outbox boolean, p_limit integer)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
BEGIN
  RETURN QUERY
  WITH due AS (
    SELECT id FROM weft.steps WHERE state = 'waiting_retry' AND run_after <= clock_timestamp()
     ORDER BY run_after LIMIT p_limit FOR UPDATE SKIP LOCKED),
  moved AS (
    UPDATE weft.steps s
       SET state = CASE WHEN t.state = 'running' THEN 'enqueued' ELSE 'cancelled' END,
           seq = s.seq + 1, run_after = NULL,
           enqueued_at = CASE WHEN t.state = 'running' THEN clock_timestamp() ELSE s.enqueued_at END,
           updated_at = clock_timestamp()
      FROM due, weft.tasks t
     WHERE s.id = due.id AND t.id = s.task_id AND s.state = 'waiting_retry'
    RETURNING s.id, s.task_id, s.seq, s.state, s.queue, s.name, s.attempts),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'waiting_retry', state, p_pid,
           CASE WHEN state = 'enqueued' THEN jsonb_build_object('reason', 'backoff elapsed', 'next_attempt', attempts + 1)
                ELSE '{"reason":"task ended"}'::jsonb END
      FROM moved),
  messages AS (
    INSERT INTO weft.outbox (queue, body)
    SELECT queue, jsonb_build_object('task_id', task_id, 'step_id', id) FROM moved WHERE state = 'enqueued' AND p_outbox
    RETURNING id, queue, body)
  SELECT 'enqueued', m.id, m.task_id, m.state, m.queue, m.name, m.attempts, NULL::jsonb, NULL::text, NULL::text, NULL::boolean
    FROM moved m WHERE m.state = 'enqueued' AND NOT p_outbox
  UNION ALL
  SELECT 'outbox', (o.body->>'step_id')::uuid, (o.body->>'task_id')::uuid, 'enqueued', o.queue, NULL, NULL,
         jsonb_build_object('id', o.id, 'body', o.body), NULL, NULL, NULL
    FROM messages o;
END $fn$;

-- Running steps whose worker is gone: its process row has not heartbeaten for
-- p_lease_ms (or there is none) and the run started longer ago than that. Such
-- a step is run again without using the retry budget (losses + 1), unless it
-- has lost its worker p_max_losses times: then it and its task fail, saying so.
CREATE FUNCTION weft.requeue_lost_steps(p_pid text, p_lease_ms integer, p_max_losses integer, p_outbox boolean, p_limit integer)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
DECLARE
  v_lease interval := make_interval(secs => p_lease_ms / 1000.0);
  v_ids    uuid[];
  v_events weft.step_event[];
  v_fail   jsonb;
  r        record;
BEGIN
  SELECT array_agg(s.id) INTO v_ids
    FROM weft.steps s
   WHERE s.state = 'running' AND s.started_at < clock_timestamp() - v_lease
     AND NOT EXISTS (SELECT 1 FROM weft.processes p
                      WHERE p.id = s.worker_id AND p.heartbeat_at > clock_timestamp() - v_lease);
  IF v_ids IS NULL THEN
    RETURN;
  END IF;
  WITH lost AS (
    UPDATE weft.steps s
       SET state = CASE WHEN s.losses + 1 >= p_max_losses THEN 'error' ELSE 'enqueued' END,
           seq = s.seq + 1, losses = s.losses + 1,
           enqueued_at = CASE WHEN s.losses + 1 >= p_max_losses THEN s.enqueued_at ELSE clock_timestamp() END,
           error = CASE WHEN s.losses + 1 >= p_max_losses
                        THEN jsonb_build_object('class', 'WorkerLostError', 'permanent', true, 'kind', 'worker_lost', 'language', 'weft',
                               'message', format('step %s lost its worker %s times (the last one, %s, stopped heartbeating while running attempt %s); '
                                                 || 'it is not run again. A handler that kills or hangs its process (os._exit, a crash, '
                                                 || 'running out of memory) does this: fix the handler, then retry the task',
                                                 s.name, s.losses + 1, coalesce(s.worker_id, '?'), s.attempts))
                        ELSE s.error END,
           finished_at = CASE WHEN s.losses + 1 >= p_max_losses THEN clock_timestamp() ELSE s.finished_at END,
           updated_at = clock_timestamp()
     WHERE s.id = ANY(v_ids) AND s.state = 'running'
       AND NOT EXISTS (SELECT 1 FROM weft.processes p
                        WHERE p.id = s.worker_id AND p.heartbeat_at > clock_timestamp() - v_lease)
    RETURNING s.id, s.task_id, s.seq, s.state, s.queue, s.name, s.attempts, s.losses, s.worker_id, s.error),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'running', state, p_pid,
           jsonb_build_object('reason', 'worker lost', 'worker', worker_id, 'attempt', attempts, 'losses', losses) FROM lost),
  messages AS (
    INSERT INTO weft.outbox (queue, body)
    SELECT queue, jsonb_build_object('task_id', task_id, 'step_id', id) FROM lost WHERE state = 'enqueued' AND p_outbox
    RETURNING id, queue, body)
  SELECT coalesce(array_agg(CASE
           WHEN l.state = 'error'
             THEN ROW('finished', l.id, l.task_id, 'error', NULL, l.name, l.attempts, NULL, NULL, NULL, NULL)::weft.step_event
           WHEN p_outbox
             THEN ROW('outbox', l.id, l.task_id, 'enqueued', l.queue, l.name, l.attempts,
                      (SELECT jsonb_build_object('id', m.id, 'body', m.body) FROM messages m
                        WHERE (m.body->>'step_id')::uuid = l.id), NULL, NULL, NULL)::weft.step_event
           ELSE ROW('enqueued', l.id, l.task_id, 'enqueued', l.queue, l.name, l.attempts, NULL, NULL, NULL, NULL)::weft.step_event
         END), '{}'),
         jsonb_agg(jsonb_build_object('task', l.task_id, 'step', l.name, 'losses', l.losses, 'error', l.error))
           FILTER (WHERE l.state = 'error')
    INTO v_events, v_fail
    FROM lost l;
  RETURN QUERY SELECT * FROM unnest(v_events);
  FOR r IN SELECT x AS f FROM jsonb_array_elements(coalesce(v_fail, '[]'::jsonb)) AS x LOOP
    RETURN QUERY SELECT * FROM weft.fail_task((r.f->>'task')::uuid, r.f->>'step', 'worker lost ' || (r.f->>'losses') || ' times',
                                              r.f->'error', p_pid);
  END LOOP;
END $fn$;

-- RabbitMQ: enqueued steps unclaimed for p_older_ms (a message the broker
-- lost): enqueued → enqueued with a new outbox row.
CREATE FUNCTION weft.redispatch_stale(p_pid text, p_older_ms integer, p_limit integer)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$
BEGIN
  RETURN QUERY
  WITH stale AS (
    SELECT id FROM weft.steps
     WHERE state = 'enqueued' AND enqueued_at < clock_timestamp() - make_interval(secs => p_older_ms / 1000.0)
     ORDER BY enqueued_at LIMIT p_limit FOR UPDATE SKIP LOCKED),
  moved AS (
    UPDATE weft.steps s SET seq = s.seq + 1, enqueued_at = clock_timestamp(), updated_at = clock_timestamp()
      FROM stale WHERE s.id = stale.id AND s.state = 'enqueued'
    RETURNING s.id, s.task_id, s.seq, s.queue),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, seq, task_id, 'enqueued', 'enqueued', p_pid, '{"reason":"not claimed in time; dispatched again"}'::jsonb FROM moved),
  messages AS (
    INSERT INTO weft.outbox (queue, body)
    SELECT queue, jsonb_build_object('task_id', task_id, 'step_id', id) FROM moved
    RETURNING id, queue, body)
  SELECT 'outbox', (o.body->>'step_id')::uuid, (o.body->>'task_id')::uuid, 'enqueued', o.queue, NULL, NULL::int,
         jsonb_build_object('id', o.id, 'body', o.body), NULL::text, NULL::text, NULL::boolean
    FROM messages o;
END $fn$;

-- ---------------------------------------------------------------------------
-- 6. Retention
-- ---------------------------------------------------------------------------

-- Delete up to p_limit tasks that ended more than p_keep ago, with their
-- steps, edges and transitions (no foreign key cascades: see section 2). Tasks are found through the primary key:
-- ids are UUIDv7, time-ordered, so p_before_id (the first id of the cutoff
-- time) bounds the scan to old tasks. Rows locked by someone else are skipped.
CREATE FUNCTION weft.delete_expired_tasks(p_before_id uuid, p_keep interval, p_limit integer) RETURNS integer
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
