-- Child workflows (issue 19): a `workflow` step starts a task of another
-- template and waits for it, holding no worker. The step enters `waiting`
-- like a sleep or wait step (its steps.wait is {workflow: {...}}, with no
-- deadline); an orchestrator starts the child task with the idempotency key
-- `child:<step id>:<step seq>` (one child per time the step waits, however
-- many orchestrators race or die half-way) and links the two; when the child
-- ends, an orchestrator completes the step with the child's results, or fails
-- it naming the child's error (weft.link_child, weft.finish_workflow_steps;
-- src/orchestration/child-workflows.ts). Cancelling a task cancels its
-- children (weft.cancel_task).
--
--   steps.child_task_id   the task a workflow step started and waits for
--                         (NULL until it is started; reset when the step is
--                         retried, so a retry starts a new child)
--   tasks.parent_step_id  the workflow step a child task reports to
--
-- Orchestrators learn of both moments from the statements that make them:
-- a `workflow` event row for a workflow step that began waiting, and the
-- parent step in the `task_ended` row of a child (weft.event_row), both
-- delivered after COMMIT like every other notice (weft.wake); each
-- orchestrator's sweep is the safety net. weft.task_ended_event takes the
-- parent step as a new argument.
--
-- Never edit this file once it has landed: add the next number instead.

ALTER TABLE weft.steps ADD COLUMN child_task_id uuid;
ALTER TABLE weft.tasks ADD COLUMN parent_step_id uuid;

-- Workflow steps waiting for their child to be started, and those waiting
-- for it to end: both partial, so other steps never touch them.
CREATE INDEX steps_workflow_unstarted ON weft.steps (updated_at)
  WHERE state = 'waiting' AND type = 'workflow' AND child_task_id IS NULL;
CREATE INDEX steps_workflow_child ON weft.steps (child_task_id)
  WHERE state = 'waiting' AND child_task_id IS NOT NULL;
-- A parent's view lists its children; a child's view names its parent.
CREATE INDEX tasks_parent_step ON weft.tasks (parent_step_id) WHERE parent_step_id IS NOT NULL;

-- (IF EXISTS: on a new database the function files, applied after the
-- migrations, have not created it yet.)
DROP FUNCTION IF EXISTS weft.task_ended_event(uuid, text, text, text, numeric);
