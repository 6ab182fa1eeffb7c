import type { Logger } from '../shared/logger.js';
import type { Database } from '../store/database.js';
import type { StatementOutcome } from '../store/events.js';
import type { DeliveryOrMode } from '../store/delivery.js';
import { signalsOf } from '../store/signals.js';
import { WORKFLOW_CHANNEL } from '../store/dispatch.js';
import { failWorkflowStep, finishWorkflowSteps, linkChild, unstartedWorkflowSteps, type UnstartedWorkflowStep } from '../store/workflows.js';
import { buildChildContext } from '../core/child-context.js';
import { refLabel } from '../core/template/calls.js';
import { LIMITS } from '../core/template/types.js';
import { ConflictError, NotFoundError, ValidationError, describeError } from '../shared/errors.js';

/** Workflow steps whose children are started (or finished) per statement. */
const BATCH = 100;

/** The task a workflow step starts (the orchestrator's CreateTaskRequest, narrowed). */
interface ChildTaskRequest {
  namespace: string;
  name: string;
  version?: string;
  context: Record<string, unknown>;
  idempotency_key: string;
}

/** What child workflows need of their orchestrator. */
export interface ChildWorkflowHost {
  db: Database;
  log: Logger;
  pid: string;
  delivery: DeliveryOrMode;
  createTask(req: ChildTaskRequest): Promise<{ id: string }>;
  /** Deliver what a statement enqueued and ended, after its COMMIT. */
  deliver(o: StatementOutcome): void;
}

/**
 * Child workflows (docs/templates.md, "Child workflows"): a `workflow` step
 * waits, holding no worker, while a task of another template runs for it.
 *
 * - **Start**: a workflow step that began waiting (told on WORKFLOW_CHANNEL
 *   after the COMMIT that made it so, by whichever process ran it, or found
 *   by the sweep) gets its child: the context
 *   its mapping builds, created with the idempotency key
 *   `child:<step id>:<seq>`, so orchestrators racing for the same step, or
 *   one that died between creating and linking, make one child; then
 *   weft.link_child ties the two. A child that cannot start (template not
 *   registered, context refused by its input_schema, children nested deeper
 *   than LIMITS.workflow_depth) fails the step for good, saying why.
 * - **End**: the child's end (its `weft_task` notice names the parent step,
 *   see childEnded; or the sweep) finishes the step: complete with the child's final results, or failed
 *   naming the child's error (weft.finish_workflow_steps).
 *
 * Passes never overlap in one process; a wake-up during a pass runs one
 * more pass after it.
 */
export class ChildWorkflows {
  private running: Promise<void> | undefined;
  private again = false;
  private unlisten: (() => void) | undefined;

  constructor(private readonly host: ChildWorkflowHost) {}

  async start(): Promise<void> {
    this.unlisten = await signalsOf(this.host.db, this.host.log).listen(WORKFLOW_CHANNEL, () => void this.pass());
  }

  /** A task ended: when it is someone's child, finish the step waiting for it now rather than at the next sweep. */
  childEnded(e: { parent_step_id?: string }): void {
    if (e.parent_step_id) void this.pass();
  }

  stop(): Promise<void> {
    this.unlisten?.();
    this.unlisten = undefined;
    return this.running ?? Promise.resolve();
  }

  /** Start the children nobody started and finish the steps whose child ended; resolves when this (or the next) pass is done. */
  pass(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.pass();
      }
    });
    return this.running;
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const steps = await unstartedWorkflowSteps(this.host.db, BATCH);
        for (const step of steps) await this.startChild(step);
        if (steps.length < BATCH) break;
      }
      for (;;) {
        const o = await finishWorkflowSteps(this.host.db, this.host.pid, this.host.delivery, BATCH);
        this.host.deliver(o);
        if (o.finished.length < BATCH) break;
      }
    } catch (err) {
      this.host.log.warn({ err: describeError(err).message }, 'starting or finishing child workflows failed; the next sweep tries again');
    }
  }

  private async startChild(step: UnstartedWorkflowStep): Promise<void> {
    const ref = step.workflow;
    const what = `workflow step ${step.name} of task ${step.task_id}`;
    if (step.depth + 1 > LIMITS.workflow_depth.max) {
      return this.fail(
        step,
        'ChildWorkflowTooDeep',
        `${what} would start a child ${step.depth + 1} levels below its first ancestor; at most ${LIMITS.workflow_depth.max} are allowed ` +
          '(templates calling each other without pinned versions?)',
      );
    }
    const built = buildChildContext(ref.context, step.context, step.parents);
    if (!built.ok) return this.fail(step, 'ChildWorkflowInvalid', `${what} cannot start ${refLabel(ref)}: ${built.message}`);
    let childId: string;
    try {
      const req: ChildTaskRequest = {
        namespace: ref.namespace,
        name: ref.name,
        context: built.context,
        idempotency_key: `child:${step.id}:${step.seq}`,
        ...(ref.version ? { version: ref.version } : {}),
      };
      childId = (await this.host.createTask(req)).id;
    } catch (err) {
      if (err instanceof ConflictError && typeof err.details?.task_id === 'string') {
        childId = err.details.task_id; // started already, by another orchestrator or before a crash
      } else if (err instanceof NotFoundError) {
        return this.fail(step, 'ChildWorkflowNotFound', `${what} runs ${refLabel(ref)}: ${err.message}; register it, then retry the task`);
      } else if (err instanceof ValidationError) {
        return this.fail(step, 'ChildWorkflowInvalid', `${what} built a context that ${refLabel(ref)} refuses: ${err.message}`);
      } else {
        throw err;
      }
    }
    this.host.deliver(await linkChild(this.host.db, step, childId, this.host.pid, this.host.delivery));
    if (this.host.log.isLevelEnabled('debug'))
      this.host.log.debug({ task_id: step.task_id, step: step.name, child_task_id: childId }, 'child workflow started');
  }

  private async fail(step: UnstartedWorkflowStep, cls: string, message: string): Promise<void> {
    this.host.log.warn({ task_id: step.task_id, step: step.name, class: cls }, message);
    this.host.deliver(await failWorkflowStep(this.host.db, step, cls, message, this.host.pid, this.host.delivery));
  }
}
