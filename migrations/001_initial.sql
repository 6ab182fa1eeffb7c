-- weft's schema: templates, tasks, steps, edges, transition logs, the PostgreSQL
-- message queue and the process registry. Applied by `weft migrate` (and by
-- every weft process at start) under an advisory lock. Never edit a migration
-- after it has landed: add the next number instead.

CREATE SCHEMA IF NOT EXISTS weft;

-- Legal state transitions, the same table as src/core/states.ts. Every
-- transition row below references one of these pairs, so an illegal move is
-- refused by the database itself.
CREATE TABLE weft.task_transition_rules (
  from_state text NOT NULL,
  to_state   text NOT NULL,
  PRIMARY KEY (from_state, to_state)
);
INSERT INTO weft.task_transition_rules (from_state, to_state) VALUES
  ('pending', 'running'), ('pending', 'complete'), ('pending', 'error'), ('pending', 'cancelled'),
  ('running', 'complete'), ('running', 'error'), ('running', 'cancelled');

CREATE TABLE weft.step_transition_rules (
  from_state text NOT NULL,
  to_state   text NOT NULL,
  PRIMARY KEY (from_state, to_state)
);
INSERT INTO weft.step_transition_rules (from_state, to_state) VALUES
  ('pending', 'enqueued'), ('pending', 'cancelled'),
  ('enqueued', 'running'), ('enqueued', 'enqueued'), ('enqueued', 'cancelled'),
  ('running', 'succeeded'), ('running', 'failed'), ('running', 'cancelled'),
  ('succeeded', 'complete'), ('succeeded', 'failed'),
  ('failed', 'waiting_retry'), ('failed', 'error'),
  ('waiting_retry', 'enqueued'), ('waiting_retry', 'cancelled');

-- A registered template version. `definition` is the validated template as JSON.
CREATE TABLE weft.templates (
  namespace     text        NOT NULL,
  name          text        NOT NULL,
  version       text        NOT NULL,
  definition    jsonb       NOT NULL,
  digest        text        NOT NULL,
  registered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (namespace, name, version)
);

CREATE TABLE weft.tasks (
  id              uuid        PRIMARY KEY,
  namespace       text        NOT NULL,
  name            text        NOT NULL,
  version         text        NOT NULL,
  state           text        NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'complete', 'error', 'cancelled')),
  -- number of transitions written so far; the next transition row gets seq + 1
  seq             integer     NOT NULL DEFAULT 1,
  context         jsonb       NOT NULL,
  idempotency_key text        UNIQUE,
  error           jsonb,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  completed_at    timestamptz,
  FOREIGN KEY (namespace, name, version) REFERENCES weft.templates (namespace, name, version)
);
CREATE INDEX tasks_active ON weft.tasks (created_at) WHERE state IN ('pending', 'running');

CREATE TABLE weft.steps (
  id               uuid        PRIMARY KEY,
  task_id          uuid        NOT NULL REFERENCES weft.tasks (id) ON DELETE CASCADE,
  -- unique within the task; a batch worker is `<worker template>_001`, ...
  name             text        NOT NULL,
  -- the template step this step was made from (equal to name except for batch workers)
  template_step    text        NOT NULL,
  type             text        NOT NULL,
  runtime          text        NOT NULL,
  handler          text        NOT NULL,
  state            text        NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'enqueued', 'running', 'succeeded', 'failed',
                                    'waiting_retry', 'complete', 'error', 'cancelled')),
  seq              integer     NOT NULL DEFAULT 1,
  attempts         integer     NOT NULL DEFAULT 0,
  max_attempts     integer     NOT NULL,
  timeout_ms       integer     NOT NULL,
  -- parents that are not yet complete; the step is ready when this reaches 0
  pending_parents  integer     NOT NULL DEFAULT 0,
  inputs           jsonb       NOT NULL DEFAULT '{}'::jsonb,
  batch            jsonb,
  result           jsonb,
  error            jsonb,
  run_after        timestamptz,
  lease_expires_at timestamptz,
  worker_id        text,
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  enqueued_at      timestamptz,
  started_at       timestamptz,
  finished_at      timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  UNIQUE (task_id, name)
);
-- Each step row is updated four or five times in its life.
ALTER TABLE weft.steps SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
                            autovacuum_vacuum_cost_delay = 0);
CREATE INDEX steps_retry_due   ON weft.steps (run_after)        WHERE state = 'waiting_retry';
CREATE INDEX steps_lease       ON weft.steps (lease_expires_at) WHERE state = 'running';
CREATE INDEX steps_reported    ON weft.steps (updated_at)       WHERE state IN ('succeeded', 'failed');
CREATE INDEX steps_enqueued    ON weft.steps (enqueued_at)      WHERE state = 'enqueued';

CREATE TABLE weft.step_edges (
  task_id   uuid NOT NULL REFERENCES weft.tasks (id) ON DELETE CASCADE,
  from_step uuid NOT NULL REFERENCES weft.steps (id) ON DELETE CASCADE,
  to_step   uuid NOT NULL REFERENCES weft.steps (id) ON DELETE CASCADE,
  PRIMARY KEY (from_step, to_step),
  CHECK (from_step <> to_step)
);
CREATE INDEX step_edges_to ON weft.step_edges (to_step);

-- Append-only audit trails. (id, seq) is unique, so two writers that both
-- believe they move the same row from the same state cannot both succeed;
-- (from_state, to_state) must be a legal pair.
CREATE TABLE weft.task_transitions (
  task_id    uuid        NOT NULL REFERENCES weft.tasks (id) ON DELETE CASCADE,
  seq        integer     NOT NULL,
  from_state text,
  to_state   text        NOT NULL,
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  process_id text        NOT NULL,
  metadata   jsonb,
  PRIMARY KEY (task_id, seq),
  FOREIGN KEY (from_state, to_state) REFERENCES weft.task_transition_rules (from_state, to_state),
  CHECK (from_state IS NOT NULL OR (seq = 1 AND to_state = 'pending'))
);

CREATE TABLE weft.step_transitions (
  step_id    uuid        NOT NULL REFERENCES weft.steps (id) ON DELETE CASCADE,
  seq        integer     NOT NULL,
  task_id    uuid        NOT NULL,
  from_state text,
  to_state   text        NOT NULL,
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  process_id text        NOT NULL,
  metadata   jsonb,
  PRIMARY KEY (step_id, seq),
  FOREIGN KEY (from_state, to_state) REFERENCES weft.step_transition_rules (from_state, to_state),
  CHECK (from_state IS NOT NULL OR (seq = 1 AND to_state = 'pending'))
);
CREATE INDEX step_transitions_task ON weft.step_transitions (task_id);

-- The PostgreSQL message queue (WEFT_MESSAGING=pg). A consumer claims rows
-- with FOR UPDATE SKIP LOCKED, hides them until visible_at, and deletes them
-- on ack. Publishers send NOTIFY weft_queue (payload: the queue name) after
-- their transaction commits, not inside it: PostgreSQL serialises the commits
-- of every transaction that notifies, WAL flush included, which capped
-- throughput at one commit per flush.
CREATE TABLE weft.queue_messages (
  id          bigserial   PRIMARY KEY,
  queue       text        NOT NULL,
  body        jsonb       NOT NULL,
  enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  visible_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  deliveries  integer     NOT NULL DEFAULT 0
);
-- Consumers read each queue in id order through this index with a plain
-- index scan, which marks the entries of deleted messages dead as it passes
-- them, so the churn of a busy queue does not slow every receive down.
CREATE INDEX queue_messages_ready ON weft.queue_messages (queue, id);
-- Every message is inserted, updated once or twice and deleted within
-- moments: vacuum this table as soon as a few hundred rows are dead
-- (orchestrators also VACUUM it every few seconds).
ALTER TABLE weft.queue_messages SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500,
                                     autovacuum_vacuum_cost_delay = 0);


CREATE TABLE weft.dead_letters (
  id          bigint      PRIMARY KEY,
  queue       text        NOT NULL,
  body        jsonb       NOT NULL,
  enqueued_at timestamptz NOT NULL,
  deliveries  integer     NOT NULL,
  reason      text        NOT NULL,
  dead_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Every running orchestrator and worker, with a heartbeat.
CREATE TABLE weft.processes (
  id           text        PRIMARY KEY,
  kind         text        NOT NULL CHECK (kind IN ('orchestrator', 'worker', 'cli')),
  runtime      text,
  host         text        NOT NULL,
  pid          integer     NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  info         jsonb       NOT NULL DEFAULT '{}'::jsonb
);

-- Accepting a successful step is the hottest path in weft. This function does
-- it in one round trip and one commit: lock the task row, check this is the
-- common case (a plain result of a step that is not a decision or batchable
-- step, on a running task), then complete the step, count down its children,
-- enqueue those that became ready (with their messages when p_outbox), and
-- finish the task when nothing else is open. Any other case returns
-- {"handled": false} and changes nothing; orchestration then takes the
-- general path (src/orchestration/orchestrator.ts), which does the same
-- things in TypeScript. Each statement below runs on a fresh snapshot taken
-- after the lock, so it sees what the previous holder committed.
CREATE FUNCTION weft.accept_success(p_step uuid, p_pid text, p_outbox boolean) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  r record;
  out jsonb;
BEGIN
  SELECT t.id AS task_id, t.state AS task_state, t.namespace, s.name, s.state, s.type, s.attempts, s.result
    INTO r
    FROM weft.steps s JOIN weft.tasks t ON t.id = s.task_id
   WHERE s.id = p_step
     FOR UPDATE OF t;
  IF NOT FOUND OR r.state <> 'succeeded' OR r.task_state <> 'running' OR r.type IN ('decision', 'batchable')
     OR (jsonb_typeof(r.result) = 'object' AND r.result ? '$weft') THEN
    RETURN jsonb_build_object('handled', false);
  END IF;

  WITH done AS (
    UPDATE weft.steps SET state = 'complete', seq = seq + 1, updated_at = clock_timestamp()
     WHERE id = p_step AND state = 'succeeded'
     RETURNING id, task_id, seq, extract(epoch FROM clock_timestamp() - enqueued_at) * 1000 AS step_ms),
  done_transition AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id)
    SELECT id, seq, task_id, 'succeeded', 'complete', p_pid FROM done),
  children AS (
    UPDATE weft.steps s
       SET pending_parents = s.pending_parents - 1,
           state = CASE WHEN s.pending_parents = 1 AND s.state = 'pending' THEN 'enqueued' ELSE s.state END,
           seq = CASE WHEN s.pending_parents = 1 AND s.state = 'pending' THEN s.seq + 1 ELSE s.seq END,
           enqueued_at = CASE WHEN s.pending_parents = 1 AND s.state = 'pending' THEN clock_timestamp() ELSE s.enqueued_at END,
           updated_at = clock_timestamp()
      FROM weft.step_edges e, done
     WHERE e.from_step = done.id AND s.id = e.to_step
     RETURNING s.id, s.task_id, s.seq, s.runtime, s.state, s.pending_parents),
  ready AS (SELECT * FROM children WHERE state = 'enqueued' AND pending_parents = 0),
  ready_transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id)
    SELECT id, seq, task_id, 'pending', 'enqueued', p_pid FROM ready),
  messages AS (
    INSERT INTO weft.queue_messages (queue, body)
    SELECT 'step.' || r.namespace || '.' || runtime, jsonb_build_object('task_id', task_id, 'step_id', id)
      FROM ready WHERE p_outbox),
  others_open AS (
    SELECT count(*) AS n FROM weft.steps WHERE task_id = r.task_id AND state <> 'complete' AND id <> p_step),
  finished AS (
    UPDATE weft.tasks SET state = 'complete', seq = seq + 1, completed_at = clock_timestamp(), updated_at = clock_timestamp()
     WHERE id = r.task_id AND state = 'running'
       AND (SELECT count(*) FROM done) = 1 AND (SELECT n FROM others_open) = 0
     RETURNING id, seq, extract(epoch FROM completed_at - created_at) * 1000 AS task_ms),
  finished_transition AS (
    INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id)
    SELECT id, seq, 'running', 'complete', p_pid FROM finished)
  SELECT jsonb_build_object(
           'handled', true,
           'task_id', r.task_id, 'namespace', r.namespace, 'name', r.name, 'attempts', r.attempts, 'result', r.result,
           'completed', (SELECT count(*) FROM done) = 1,
           'task_completed', (SELECT count(*) FROM finished) = 1,
           'step_ms', (SELECT step_ms FROM done),
           'task_ms', (SELECT task_ms FROM finished),
           'dispatched', coalesce((SELECT jsonb_agg(jsonb_build_object('step_id', id, 'task_id', task_id, 'runtime', runtime)) FROM ready), '[]'::jsonb))
    INTO out;
  RETURN out;
END $fn$;
