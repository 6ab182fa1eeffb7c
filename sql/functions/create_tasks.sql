-- Bulk submission (issue 20): many tasks, their initial steps, edges and
-- transitions, and the dispatch of their ready steps in ONE statement (one
-- round trip, one commit), set-based rather than weft.create_task once per
-- task. An item whose idempotency key is already taken (by an earlier task or
-- an earlier item of the same batch) creates nothing and is answered with the
-- task that holds the key and the fields that differ from it, so replaying a
-- batch whose answer was lost creates nothing twice.
--
-- Each item is created exactly as weft.create_task creates one task: with a
-- run_at in the future (a delayed start) the task and all its steps stay
-- `pending` and nothing is dispatched (weft.start_due_tasks starts it then);
-- otherwise its root steps are released, `enqueued` or, for a step that waits
-- (steps.wait set: sleep, wait), `waiting` with its deadline
-- (weft.wait_deadline) in run_after; a wait step gets its callback token.
--
-- p_tasks: [{item, id, namespace, name, version, asked_version, context, idempotency_key, open_steps, run_at}]
--          (asked_version: the version the caller named, null when it asked for the latest;
--          run_at: a delayed start, or null)
-- p_steps: [{task_id, namespace, id, name, template_step, type, runtime, handler, max_attempts,
--            timeout_ms, pending_parents, inputs, batch, wait}]
-- p_edges: [{task_id, from, to}]
--
-- Returns the 'enqueued' / 'outbox' rows (weft.dispatch_ready) of the created
-- tasks' ready steps, a 'waiting' row (weft.waiting_event) per root step that
-- began waiting, and one 'task_created' row per item: task_id, and detail
-- {item, outcome: 'created' | 'existing' | 'gone', differs: [field names], run_at}
-- ('gone': the key's task was deleted by retention between the two reads;
-- run_at: the delayed start of the task created, or of the one holding the key).
-- requires: event_row, wait_deadline
CREATE OR REPLACE FUNCTION weft.create_tasks(p_tasks jsonb, p_steps jsonb, p_edges jsonb, p_pid text, p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
  v_missing text;
  v_created uuid[];
  v_held    uuid[];
BEGIN
  -- The API resolved every template before the call; templates are never deleted, so this only
  -- guards a caller that skipped that step.
  SELECT format('%s/%s@%s', i.namespace, i.name, i.version) INTO v_missing
    FROM (SELECT DISTINCT namespace, name, version
            FROM jsonb_to_recordset(p_tasks) AS x(namespace text, name text, version text)) AS i
   WHERE NOT EXISTS (SELECT 1 FROM weft.templates t
                      WHERE t.namespace = i.namespace AND t.name = i.name AND t.version = i.version)
   LIMIT 1;
  IF v_missing IS NOT NULL THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('no template %s is registered', v_missing),
      HINT = 'register it first (weft orchestrator --templates DIR, or POST /v1/templates)';
  END IF;

  -- A taken key (by an existing task, or by an earlier item of this batch) skips the item.
  -- An item held for its run_at is created pending (seq 1), the others running (seq 2).
  WITH ins AS (
    INSERT INTO weft.tasks (id, namespace, name, version, state, seq, context, idempotency_key, open_steps, run_at)
    SELECT x.id, x.namespace, x.name, x.version, CASE WHEN x.held THEN 'pending' ELSE 'running' END, CASE WHEN x.held THEN 1 ELSE 2 END,
           x.context, x.idempotency_key, x.open_steps, x.run_at
      FROM (SELECT r.*, coalesce(r.run_at > clock_timestamp(), false) AS held
              FROM jsonb_to_recordset(p_tasks) AS r(item int, id uuid, namespace text, name text, version text, context jsonb,
                                                    idempotency_key text, open_steps int, run_at timestamptz)) AS x
     ORDER BY x.item
    -- The partial unique index tasks_idempotency_key_key (migration 010): a task without a key has no entry.
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, state, run_at),
  created_transitions AS (
    INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id, metadata)
    SELECT i.id, s.seq, s.from_state, s.to_state, p_pid,
           CASE WHEN s.seq = 1 AND i.run_at IS NOT NULL THEN jsonb_build_object('run_at', i.run_at) END
      FROM ins i,
           (VALUES (1, NULL::text, 'pending'::text), (2, 'pending', 'running')) AS s(seq, from_state, to_state)
     WHERE s.seq = 1 OR i.state = 'running')
  SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(id) FILTER (WHERE state = 'pending'), '{}')
    INTO v_created, v_held
    FROM ins;

  RETURN QUERY
  WITH created AS (SELECT id, id = ANY(v_held) AS held FROM unnest(v_created) AS c(id)),
  planned AS (
    SELECT x.*, c.held, x.pending_parents > 0 OR c.held AS stays
      FROM jsonb_to_recordset(p_steps) AS x(task_id uuid, namespace text, id uuid, name text, template_step text, type text,
                                            runtime text, handler text, max_attempts int, timeout_ms int, pending_parents int,
                                            inputs jsonb, batch jsonb, wait jsonb)
      JOIN created c ON c.id = x.task_id),
  new_steps AS (
    INSERT INTO weft.steps (id, task_id, name, template_step, type, runtime, handler, queue, state, seq,
                            max_attempts, timeout_ms, pending_parents, inputs, batch, enqueued_at, wait, run_after, signal_token)
    SELECT p.id, p.task_id, p.name, p.template_step, p.type, p.runtime, p.handler, 'step.' || p.namespace || '.' || p.runtime,
           CASE WHEN p.stays THEN 'pending' WHEN p.wait IS NOT NULL THEN 'waiting' ELSE 'enqueued' END,
           CASE WHEN p.stays THEN 1 ELSE 2 END,
           p.max_attempts, p.timeout_ms, p.pending_parents, coalesce(p.inputs, '{}'::jsonb), p.batch,
           CASE WHEN NOT p.stays AND p.wait IS NULL THEN clock_timestamp() END,
           p.wait,
           CASE WHEN NOT p.stays AND p.wait IS NOT NULL THEN weft.wait_deadline(p.wait) END,
           CASE WHEN p.type = 'wait' THEN replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '') END
      FROM planned p
    RETURNING id, task_id, state, queue, name, type, attempts, run_after),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, 1, task_id, NULL, 'pending', p_pid, NULL FROM new_steps
    UNION ALL
    SELECT id, 2, task_id, 'pending', state, p_pid,
           CASE WHEN state = 'waiting' THEN jsonb_strip_nulls(jsonb_build_object('until', run_after)) END
      FROM new_steps WHERE state IN ('enqueued', 'waiting')),
  edges AS (
    INSERT INTO weft.step_edges (task_id, from_step, to_step)
    SELECT e.task_id, e."from", e."to"
      FROM jsonb_to_recordset(p_edges) AS e(task_id uuid, "from" uuid, "to" uuid)
      JOIN created c ON c.id = e.task_id)
  SELECT * FROM weft.dispatch_ready(ARRAY(SELECT weft.enqueued_event(n.id, n.task_id, n.queue, n.name, NULL)
                                            FROM new_steps n WHERE n.state = 'enqueued'), p_outbox)
  UNION ALL
  SELECT (weft.waiting_event(n.id, n.task_id, n.name, n.type, n.attempts, n.run_after)).* FROM new_steps n WHERE n.state = 'waiting';

  -- This statement sees the rows the ones above wrote: an item skipped for its key finds its task.
  RETURN QUERY
  SELECT 'task_created'::text, NULL::uuid, coalesce(t.id, x.id), NULL::text, NULL::text, NULL::text, NULL::int,
         jsonb_build_object(
           'item', x.item,
           'outcome', CASE WHEN x.id = ANY(v_created) THEN 'created' WHEN t.id IS NULL THEN 'gone' ELSE 'existing' END,
           'differs', CASE WHEN x.id = ANY(v_created) OR t.id IS NULL THEN '[]'::jsonb ELSE
             to_jsonb(array_remove(ARRAY[
               CASE WHEN t.namespace <> x.namespace THEN 'namespace' END,
               CASE WHEN t.name <> x.name THEN 'name' END,
               CASE WHEN x.asked_version IS NOT NULL AND t.version <> x.asked_version THEN 'version' END,
               CASE WHEN t.context <> x.context THEN 'context' END], NULL)) END,
           'run_at', CASE WHEN x.id = ANY(v_created) THEN x.run_at ELSE t.run_at END),
         NULL::text, NULL::text, NULL::boolean
    FROM jsonb_to_recordset(p_tasks) AS x(item int, id uuid, namespace text, name text, asked_version text, context jsonb,
                                          idempotency_key text, run_at timestamptz)
    -- A look-up per item by its key (tasks_idempotency_key_key). As a join, a planner that believes
    -- weft.tasks is small hashes the whole table for every batch (seen: 9,056 rows read to answer
    -- 1,000 items, 12 ms, growing with the table); LIMIT 1 (the key is unique) keeps it a look-up.
    LEFT JOIN LATERAL (SELECT * FROM weft.tasks k
                        WHERE k.idempotency_key = x.idempotency_key AND NOT (x.id = ANY(v_created)) LIMIT 1) t ON true
   ORDER BY x.item;
END $fn$;
