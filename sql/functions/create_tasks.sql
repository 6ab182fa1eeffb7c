-- Bulk submission (issue 20): many tasks, their initial steps, edges and
-- transitions, and the dispatch of their ready steps in ONE statement (one
-- round trip, one commit), set-based rather than weft.create_task once per
-- task. An item whose idempotency key is already taken (by an earlier task or
-- an earlier item of the same batch) creates nothing and is answered with the
-- task that holds the key and the fields that differ from it, so replaying a
-- batch whose answer was lost creates nothing twice.
--
-- p_tasks: [{item, id, namespace, name, version, asked_version, context, idempotency_key, open_steps}]
--          (asked_version: the version the caller named, null when it asked for the latest)
-- p_steps: [{task_id, namespace, id, name, template_step, type, runtime, handler, max_attempts,
--            timeout_ms, pending_parents, inputs, batch}]
-- p_edges: [{task_id, from, to}]
--
-- Returns weft.insert_steps' 'enqueued' / 'outbox' rows for the created tasks'
-- ready steps, and one 'task_created' row per item: task_id, and detail
-- {item, outcome: 'created' | 'existing' | 'gone', differs: [field names]}
-- ('gone': the key's task was deleted by retention between the two reads).
CREATE OR REPLACE FUNCTION weft.create_tasks(p_tasks jsonb, p_steps jsonb, p_edges jsonb, p_pid text, p_outbox boolean)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
  v_missing text;
  v_created uuid[];
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
  WITH ins AS (
    INSERT INTO weft.tasks (id, namespace, name, version, state, seq, context, idempotency_key, open_steps)
    SELECT x.id, x.namespace, x.name, x.version, 'running', 2, x.context, x.idempotency_key, x.open_steps
      FROM jsonb_to_recordset(p_tasks) AS x(item int, id uuid, namespace text, name text, version text, context jsonb,
                                            idempotency_key text, open_steps int)
     ORDER BY x.item
    -- The partial unique index tasks_idempotency_key_key (migration 010): a task without a key has no entry.
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id)
  SELECT array_agg(id) INTO v_created FROM ins;
  v_created := coalesce(v_created, '{}');

  INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id)
  SELECT c.id, s.seq, s.from_state, s.to_state, p_pid
    FROM unnest(v_created) AS c(id),
         (VALUES (1, NULL::text, 'pending'::text), (2, 'pending', 'running')) AS s(seq, from_state, to_state);

  RETURN QUERY
  WITH created AS (SELECT id FROM unnest(v_created) AS c(id)),
  new_steps AS (
    INSERT INTO weft.steps (id, task_id, name, template_step, type, runtime, handler, queue, state, seq,
                            max_attempts, timeout_ms, pending_parents, inputs, batch, enqueued_at)
    SELECT x.id, x.task_id, x.name, x.template_step, x.type, x.runtime, x.handler, 'step.' || x.namespace || '.' || x.runtime,
           CASE WHEN x.pending_parents = 0 THEN 'enqueued' ELSE 'pending' END,
           CASE WHEN x.pending_parents = 0 THEN 2 ELSE 1 END,
           x.max_attempts, x.timeout_ms, x.pending_parents, coalesce(x.inputs, '{}'::jsonb), x.batch,
           CASE WHEN x.pending_parents = 0 THEN clock_timestamp() END
      FROM jsonb_to_recordset(p_steps) AS x(task_id uuid, namespace text, id uuid, name text, template_step text, type text,
                                            runtime text, handler text, max_attempts int, timeout_ms int, pending_parents int,
                                            inputs jsonb, batch jsonb)
      JOIN created c ON c.id = x.task_id
    RETURNING id, task_id, state, queue, name),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id)
    SELECT id, 1, task_id, NULL, 'pending', p_pid FROM new_steps
    UNION ALL
    SELECT id, 2, task_id, 'pending', 'enqueued', p_pid FROM new_steps WHERE state = 'enqueued'),
  edges AS (
    INSERT INTO weft.step_edges (task_id, from_step, to_step)
    SELECT e.task_id, e."from", e."to"
      FROM jsonb_to_recordset(p_edges) AS e(task_id uuid, "from" uuid, "to" uuid)
      JOIN created c ON c.id = e.task_id),
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
               CASE WHEN t.context <> x.context THEN 'context' END], NULL)) END),
         NULL::text, NULL::text, NULL::boolean
    FROM jsonb_to_recordset(p_tasks) AS x(item int, id uuid, namespace text, name text, asked_version text, context jsonb,
                                          idempotency_key text)
    LEFT JOIN weft.tasks t ON x.idempotency_key IS NOT NULL AND t.idempotency_key = x.idempotency_key
                          AND NOT (x.id = ANY(v_created))
   ORDER BY x.item;
END $fn$;
