-- Steps and tasks that wait (issue 19): a delayed start, a durable sleep, and a
-- step that waits for a signal or a person. None of them holds a worker: the
-- waiting is a row in PostgreSQL, ended by an orchestrator's sweep when its
-- time comes or by the API when a signal arrives (docs/templates.md, "Steps
-- that wait"). A `workflow` step (a child task) can reuse the same state.
--
--   tasks.run_at     a delayed start: the task stays `pending` (its root
--                    steps too) until then; weft.start_due_tasks starts it.
--   steps.wait       what a `sleep` or `wait` step waits for ({ms} | {until,
--                    from, step, path} | {timeout_ms, on_timeout, result,
--                    schema}); NULL for a step a handler runs.
--   steps.signal_token  a wait step's callback capability: whoever holds it may
--                    signal that one step, without an API token.
--   state `waiting`  entered instead of `enqueued` when such a step is
--                    released; run_after is its deadline (NULL: none).
--
-- Never edit this file once it has landed: add the next number instead.

ALTER TABLE weft.tasks ADD COLUMN run_at timestamptz;
CREATE INDEX tasks_start_due ON weft.tasks (run_at) WHERE state = 'pending' AND run_at IS NOT NULL;

ALTER TABLE weft.steps
  ADD COLUMN wait jsonb,
  ADD COLUMN signal_token text,
  DROP CONSTRAINT steps_state_check,
  ADD CONSTRAINT steps_state_check
    CHECK (state IN ('pending', 'enqueued', 'running', 'succeeded', 'failed',
                     'waiting_retry', 'waiting', 'complete', 'error', 'cancelled'));
CREATE INDEX steps_wait_due ON weft.steps (run_after) WHERE state = 'waiting';
CREATE UNIQUE INDEX steps_signal_token ON weft.steps (signal_token) WHERE signal_token IS NOT NULL;

INSERT INTO weft.step_transition_rules (from_state, to_state) VALUES
  -- released by its parents (or its task's start) as a sleep or wait step
  ('pending', 'waiting'),
  -- its time came or its signal arrived: the orchestrator or the API finishes
  -- it the way a worker finishes a step (running, then complete or error, in
  -- one statement: weft.complete_waiting)
  ('waiting', 'running'),
  ('waiting', 'cancelled'),
  -- an operator retried its task
  ('error', 'waiting'), ('cancelled', 'waiting');
SELECT weft.compile_transition_rules();

-- New arguments: p_run_at (create_task) and p_hold (insert_steps: insert the
-- root steps pending, for a task that starts later).
DROP FUNCTION weft.create_task(uuid, text, text, text, jsonb, text, jsonb, jsonb, text, boolean);
DROP FUNCTION weft.insert_steps(uuid, text, jsonb, jsonb, text, boolean);
