-- Insert planned steps with their first transitions and edges; those with no
-- open parent are `enqueued` at once (weft.dispatch_ready: events enqueued,
-- or outbox when p_outbox). Used by task creation and by decision and batch expansion; the
-- caller keeps tasks.open_steps.
-- requires: event_row
CREATE OR REPLACE FUNCTION weft.insert_steps(p_task uuid, p_namespace text, p_steps jsonb, p_edges jsonb, p_pid text, p_outbox boolean)
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
    SELECT p_task, e."from", e."to" FROM jsonb_to_recordset(p_edges) AS e("from" uuid, "to" uuid))
  SELECT * FROM weft.dispatch_ready(ARRAY(SELECT weft.enqueued_event(n.id, n.task_id, n.queue, n.name, NULL)
                                            FROM new_steps n WHERE n.state = 'enqueued'), p_outbox);
END $fn$;
