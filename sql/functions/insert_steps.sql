-- Insert planned steps with their first transitions and edges; those with no
-- open parent are ready at once: `enqueued` (weft.dispatch_ready: events
-- enqueued, or outbox when p_outbox), or `waiting` for a sleep or wait step
-- (steps.wait set; weft.wait_deadline). With p_hold (a task that starts later,
-- tasks.run_at) every step stays `pending`: weft.start_due_tasks releases the
-- roots. Used by task creation and by decision and batch expansion; the caller
-- keeps tasks.open_steps. A wait step gets its callback token (steps.signal_token).
-- requires: event_row, wait_deadline
CREATE OR REPLACE FUNCTION weft.insert_steps(p_task uuid, p_namespace text, p_steps jsonb, p_edges jsonb, p_pid text, p_outbox boolean,
                                             p_hold boolean DEFAULT false)
RETURNS SETOF weft.step_event
LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY
  WITH new_steps AS (
    INSERT INTO weft.steps (id, task_id, name, template_step, type, runtime, handler, queue, state, seq,
                            max_attempts, timeout_ms, pending_parents, inputs, batch, enqueued_at, wait, run_after, signal_token)
    SELECT x.id, p_task, x.name, x.template_step, x.type, x.runtime, x.handler, 'step.' || p_namespace || '.' || x.runtime,
           CASE WHEN x.pending_parents > 0 OR p_hold THEN 'pending' WHEN x.wait IS NOT NULL THEN 'waiting' ELSE 'enqueued' END,
           CASE WHEN x.pending_parents > 0 OR p_hold THEN 1 ELSE 2 END,
           x.max_attempts, x.timeout_ms, x.pending_parents, coalesce(x.inputs, '{}'::jsonb), x.batch,
           CASE WHEN x.pending_parents = 0 AND NOT p_hold AND x.wait IS NULL THEN clock_timestamp() END,
           x.wait,
           CASE WHEN x.pending_parents = 0 AND NOT p_hold AND x.wait IS NOT NULL THEN weft.wait_deadline(x.wait) END,
           CASE WHEN x.type = 'wait' THEN replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '') END
      FROM jsonb_to_recordset(p_steps) AS x(id uuid, name text, template_step text, type text, runtime text, handler text,
                                            max_attempts int, timeout_ms int, pending_parents int, inputs jsonb, batch jsonb, wait jsonb)
    RETURNING id, task_id, state, queue, name, run_after, type),
  transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id, metadata)
    SELECT id, 1, task_id, NULL, 'pending', p_pid, NULL FROM new_steps
    UNION ALL
    SELECT id, 2, task_id, 'pending', state, p_pid,
           CASE WHEN state = 'waiting' THEN jsonb_strip_nulls(jsonb_build_object('until', run_after)) END
      FROM new_steps WHERE state IN ('enqueued', 'waiting')),
  edges AS (
    INSERT INTO weft.step_edges (task_id, from_step, to_step)
    SELECT p_task, e."from", e."to" FROM jsonb_to_recordset(p_edges) AS e("from" uuid, "to" uuid))
  SELECT * FROM weft.dispatch_ready(ARRAY(SELECT weft.enqueued_event(n.id, n.task_id, n.queue, n.name, NULL)
                                            FROM new_steps n WHERE n.state = 'enqueued'), p_outbox)
  UNION ALL
  SELECT (weft.waiting_event(n.id, n.task_id, n.name, n.type, NULL, n.run_after,
                             EXISTS (SELECT 1 FROM weft.task_watchers w WHERE w.task_id = n.task_id))).*
    FROM new_steps n WHERE n.state = 'waiting';
END $fn$;
