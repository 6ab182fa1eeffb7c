-- Constructors of weft.step_event rows (the type is in migration 002), one per
-- kind, so no statement spells the 11 positional fields. LANGUAGE sql and
-- IMMUTABLE (STABLE for those that build JSON: jsonb_build_object is STABLE,
-- and a function declared stricter than its body is not inlined): the planner
-- inlines each call into the plain ROW(...) it stands for (EXPLAIN VERBOSE
-- shows no function call), so they cost nothing per row.
--
-- finished    a step whose outcome was applied; p_state its new state
-- enqueued    a step made ready in p_queue and not claimed
-- outbox      a message written to weft.outbox for the broker (detail {id, body})
-- task_ended  a task that ended (p_state complete, error or cancelled); a
--             child workflow's names its parent step (detail.parent_step)
-- waiting     a step that entered `waiting` (any step with steps.wait: a
--             sleep, a wait, a workflow): no worker is told; live watchers
--             are, and what acts on its type (detail {type, run_after}: its
--             deadline, when it has one); for a workflow step, the
--             orchestrators start its child (src/orchestration/child-workflows.ts)
CREATE OR REPLACE FUNCTION weft.event_row(p_kind text, p_step uuid, p_task uuid, p_state text, p_queue text, p_name text,
                                           p_attempt integer, p_detail jsonb, p_watched boolean)
RETURNS weft.step_event
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT ROW(p_kind, p_step, p_task, p_state, p_queue, p_name, p_attempt, p_detail, NULL, NULL, p_watched)::weft.step_event
$fn$;

CREATE OR REPLACE FUNCTION weft.finished_event(p_step uuid, p_task uuid, p_state text, p_name text, p_attempt integer,
                                               p_detail jsonb DEFAULT NULL, p_watched boolean DEFAULT NULL)
RETURNS weft.step_event
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT weft.event_row('finished', p_step, p_task, p_state, NULL, p_name, p_attempt, p_detail, p_watched)
$fn$;

CREATE OR REPLACE FUNCTION weft.enqueued_event(p_step uuid, p_task uuid, p_queue text, p_name text, p_attempt integer,
                                               p_watched boolean DEFAULT NULL)
RETURNS weft.step_event
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT weft.event_row('enqueued', p_step, p_task, 'enqueued', p_queue, p_name, p_attempt, NULL, p_watched)
$fn$;

CREATE OR REPLACE FUNCTION weft.outbox_event(p_id bigint, p_queue text, p_body jsonb, p_name text DEFAULT NULL, p_attempt integer DEFAULT NULL,
                                             p_watched boolean DEFAULT NULL)
RETURNS weft.step_event
LANGUAGE sql STABLE AS $fn$
  SELECT weft.event_row('outbox', (p_body->>'step_id')::uuid, (p_body->>'task_id')::uuid, 'enqueued', p_queue, p_name, p_attempt,
                         jsonb_build_object('id', p_id, 'body', p_body), p_watched)
$fn$;

CREATE OR REPLACE FUNCTION weft.task_ended_event(p_task uuid, p_state text, p_namespace text, p_name text, p_ms numeric,
                                                 p_parent_step uuid DEFAULT NULL)
RETURNS weft.step_event
LANGUAGE sql STABLE AS $fn$
  SELECT weft.event_row('task_ended', NULL, p_task, p_state, NULL, NULL, NULL,
                         CASE WHEN p_parent_step IS NULL
                              THEN jsonb_build_object('namespace', p_namespace, 'name', p_name, 'ms', p_ms)
                              ELSE jsonb_build_object('namespace', p_namespace, 'name', p_name, 'ms', p_ms, 'parent_step', p_parent_step) END,
                         NULL)
$fn$;

CREATE OR REPLACE FUNCTION weft.waiting_event(p_step uuid, p_task uuid, p_name text, p_type text, p_attempt integer,
                                              p_run_after timestamptz, p_watched boolean DEFAULT NULL)
RETURNS weft.step_event
LANGUAGE sql STABLE AS $fn$
  SELECT weft.event_row('waiting', p_step, p_task, 'waiting', NULL, p_name, p_attempt,
                         jsonb_strip_nulls(jsonb_build_object('type', p_type, 'run_after', p_run_after)), p_watched)
$fn$;
