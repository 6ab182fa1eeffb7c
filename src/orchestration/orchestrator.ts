import { EventEmitter } from 'node:events';
import type { Database } from '../store/database.js';
import type { Logger } from '../shared/logger.js';
import type { Delivery, MessageBus, Subscription } from '../messaging/types.js';
import { RESULTS_QUEUE, isStepMessage, stepQueue } from '../messaging/queues.js';
import { createTask, getTaskState, type DispatchedStep } from '../store/tasks.js';
import type { PoolClient } from 'pg';
import {
  acceptSuccess,
  beginAndLockReportedStep,
  closeFailedStep,
  completeStep,
  dispatchDueRetries,
  expireLeases,
  failTask,
  insertExpansion,
  nextRetryAt,
  redispatchStale,
  rejectOutcome,
  scheduleRetry,
  taskSteps,
  unprocessedReports,
} from '../store/results.js';
import { expandBatch, expandDecision, initialSteps, type PlannedStep } from '../core/plan.js';
import { interpretResult } from '../core/outcome.js';
import { decideAfterFailure } from '../core/retry.js';
import { DEFAULT_RETRY, type StepType, type TemplateDefinition } from '../core/template/types.js';
import { TERMINAL_TASK_STATES } from '../core/states.js';
import { ValidationError, describeError } from '../shared/errors.js';
import { TemplateCatalog } from './template-catalog.js';
import { TaskEvents, type TaskEndEvent } from './task-events.js';
import { OrchestratorMetrics } from './metrics.js';

export interface OrchestratorOptions {
  db: Database;
  bus: MessageBus;
  log: Logger;
  processId: string;
  /** Sweep period: due retries, expired leases, lost messages. */
  pollIntervalMs?: number;
  /** An `enqueued` step unclaimed for this long is dispatched again. */
  redispatchAfterMs?: number;
  /** A reported step unprocessed for this long is processed by the sweep. */
  reportGraceMs?: number;
  /** Reports processed concurrently (each holds one connection briefly). */
  concurrency?: number;
}

export interface CreateTaskRequest {
  namespace: string;
  name: string;
  version?: string;
  context?: unknown;
  idempotency_key?: string;
}

/** Emitted for `weft run` and tests: `step` when a report is accepted, `task` when a task ends here. */
export interface StepEvent {
  task_id: string;
  step_id: string;
  name: string;
  state: 'complete' | 'waiting_retry' | 'error';
  attempts: number;
  result?: unknown;
  error?: unknown;
}

/** How often the sweep runs the message bus's housekeeping (VACUUM of the PostgreSQL queue). */
const MAINTENANCE_EVERY_MS = 5_000;

interface ReportOutcome {
  events: StepEvent[];
  dispatched: DispatchedStep[];
  taskEnded?: TaskEndEvent;
  retryAt?: Date;
}

/**
 * An orchestrator process: creates tasks, and turns every worker report into
 * the next state of the task — accept or retry the step, expand decision and
 * batch outcomes, dispatch what became ready, finish the task. Any number of
 * orchestrators may share one database: a task's reports are processed
 * under its row lock, and every state change is a compare-and-set.
 */
export class Orchestrator extends EventEmitter {
  readonly templates: TemplateCatalog;
  readonly taskEvents: TaskEvents;
  readonly metrics: OrchestratorMetrics;
  private readonly db: Database;
  private readonly bus: MessageBus;
  private readonly log: Logger;
  private readonly pid: string;
  private readonly pollIntervalMs: number;
  private readonly redispatchAfterMs: number;
  private readonly reportGraceMs: number;
  private readonly concurrency: number;
  private subscription: Subscription | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryTimerAt = Infinity;
  private sweeping: Promise<void> | undefined;
  private lastMaintenance = 0;
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(options: OrchestratorOptions) {
    super();
    this.setMaxListeners(0);
    this.db = options.db;
    this.bus = options.bus;
    this.log = options.log.child({ component: 'orchestrator', process: options.processId });
    this.pid = options.processId;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.redispatchAfterMs = options.redispatchAfterMs ?? 30_000;
    this.reportGraceMs = options.reportGraceMs ?? Math.max(5_000, 5 * this.pollIntervalMs);
    this.concurrency = options.concurrency ?? 16;
    this.templates = new TemplateCatalog(this.db);
    this.taskEvents = new TaskEvents(this.db, this.log);
    this.metrics = new OrchestratorMetrics(this.db, this.bus);
  }

  async start(): Promise<void> {
    await this.taskEvents.start();
    this.subscription = await this.bus.consume([RESULTS_QUEUE], (d) => this.onReport(d), { prefetch: this.concurrency });
    this.sweepTimer = setInterval(() => void this.sweep(), this.pollIntervalMs);
    this.sweepTimer.unref();
    void this.sweep();
    this.log.info({ messaging: this.bus.backend }, 'orchestrator started');
  }

  /** Stop taking reports, let the ones in hand finish, stop the timers. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweepTimer);
    clearTimeout(this.retryTimer);
    await this.subscription?.stop();
    await Promise.allSettled([...this.inFlight, this.sweeping]);
    await this.taskEvents.close();
    this.log.info('orchestrator stopped');
  }

  // -------------------------------------------------------------------------
  // Task creation
  // -------------------------------------------------------------------------

  /**
   * Create a task: check the template exists (NotFoundError) and the
   * context satisfies its input_schema (ValidationError naming the field),
   * then write the task, its initial steps and edges and dispatch the ready
   * ones, all in one statement. Returns the task id.
   */
  async createTask(req: CreateTaskRequest): Promise<{ id: string; dispatched: number }> {
    const { def, checkInput } = await this.templates.get(req.namespace, req.name, req.version);
    const context = req.context ?? {};
    const check = checkInput(context);
    if (!check.ok) {
      const first = check.problems[0]!;
      throw new ValidationError(
        `context does not match the input_schema of ${def.namespace}/${def.name}@${def.version}: ` +
          check.problems.map((p) => `${p.path}: ${p.message}`).join('; '),
        first.path,
        check.problems,
      );
    }
    const { taskId, dispatched } = await createTask(
      this.db,
      { namespace: def.namespace, name: def.name, version: def.version, context, idempotencyKey: req.idempotency_key, steps: initialSteps(def) },
      this.pid,
      this.bus.transactionalOutbox,
    );
    await this.publish(dispatched);
    this.metrics.tasksCreated.inc();
    if (this.log.isLevelEnabled('debug')) this.log.debug({ task_id: taskId, dispatched: dispatched.length }, 'task created');
    return { id: taskId, dispatched: dispatched.length };
  }

  /** Resolve when the task has ended (true) or `timeoutMs` passed (false). */
  async waitForTask(taskId: string, timeoutMs: number): Promise<boolean> {
    return this.taskEvents.waitForEnd(taskId, timeoutMs, async () => {
      const state = await getTaskState(this.db, taskId);
      return state !== undefined && TERMINAL_TASK_STATES.has(state);
    });
  }

  // -------------------------------------------------------------------------
  // Reports
  // -------------------------------------------------------------------------

  private onReport(d: Delivery): void {
    if (!isStepMessage(d.body)) {
      d.nack(false, `not a step message: ${JSON.stringify(d.body).slice(0, 200)}`);
      return;
    }
    const stepId = d.body.step_id;
    const work = this.processReport(stepId).then(
      () => d.ack(),
      (err) => {
        // Leave it for redelivery; the sweep also finds reported steps that
        // nobody processed, so nothing is lost if this keeps failing.
        this.log.warn({ step_id: stepId, err: describeError(err) }, 'processing a step report failed; it will be retried');
        d.nack(true, (err as Error).message);
      },
    );
    this.track(work);
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  /**
   * Act on a step a worker reported (or whose lease expired). Idempotent:
   * a step that is no longer `succeeded`/`failed` is left alone, so a
   * duplicate report or two orchestrators racing change nothing twice.
   */
  async processReport(stepId: string): Promise<void> {
    const fast = await this.acceptFast(stepId);
    if (fast) {
      this.afterCommit(fast);
      await this.publish(fast.dispatched);
      return;
    }
    for (let attempt = 1; ; attempt++) {
      const client = await this.db.acquire();
      try {
        const outcome = await this.processReportIn(client, stepId);
        this.afterCommit(outcome);
        await this.publish(outcome.dispatched);
        return;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        const code = (err as { code?: string }).code;
        // Two orchestrators can deadlock on one task's children; try again.
        if ((code === '40P01' || code === '40001') && attempt < 5) continue;
        throw err;
      } finally {
        client.release();
      }
    }
  }

  /** The common case (a standard step succeeded) in one round trip; undefined for anything else. */
  private async acceptFast(stepId: string): Promise<ReportOutcome | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await acceptSuccess(this.db, stepId, this.pid, this.bus.transactionalOutbox);
        if (!r) return undefined;
        const outcome: ReportOutcome = { events: [], dispatched: r.dispatched.map((d) => ({ ...d, namespace: r.namespace })) };
        if (r.completed) {
          outcome.events.push({ task_id: r.task_id, step_id: stepId, name: r.name, state: 'complete', attempts: r.attempts, result: r.result });
          if (r.step_ms !== null) this.metrics.stepLatency.observe(r.step_ms);
          this.metrics.reportsProcessed.inc({ outcome: 'complete' });
        }
        if (r.task_completed) {
          outcome.taskEnded = { task_id: r.task_id, state: 'complete' };
          if (r.task_ms !== null) this.metrics.taskLatency.observe(r.task_ms);
        }
        return outcome;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if ((code === '40P01' || code === '40001') && attempt < 5) continue;
        throw err;
      }
    }
  }

  /**
   * One transaction on `client`, which it commits. The common case (a
   * standard step succeeded) costs two round trips: BEGIN + lock + read,
   * then the completing statement + COMMIT.
   */
  private async processReportIn(client: PoolClient, stepId: string): Promise<ReportOutcome> {
    const started = performance.now();
    const outcome: ReportOutcome = { events: [], dispatched: [] };
    const step = await beginAndLockReportedStep(client, stepId);
    if (!step) {
      await client.query('COMMIT');
      return outcome;
    }
    const taskOpen = !TERMINAL_TASK_STATES.has(step.task_state);
    const outbox = this.bus.transactionalOutbox;

    if (step.state === 'succeeded') {
      let rejection: Record<string, unknown> | undefined;
      let expanded = false;
      try {
        const result = interpretResult(step.type as StepType, step.result);
        if (taskOpen && result.kind !== 'value') {
          const { def } = await this.templates.get(step.namespace, step.template_name, step.version);
          const existing = await taskSteps(client, step.task_id);
          const planned: PlannedStep[] =
            result.kind === 'decision'
              ? expandDecision(def, existing, step.template_step, result.steps)
              : expandBatch(def, existing, step.template_step, result.cursors);
          outcome.dispatched.push(...(await insertExpansion(client, step.task_id, step.namespace, planned, existing, this.pid, outbox)));
          expanded = true;
        }
      } catch (err) {
        const e = describeError(err);
        rejection = { class: e.class, message: e.message, permanent: true, kind: 'invalid_outcome', language: 'weft' };
      }
      if (rejection) {
        await rejectOutcome(client, step.step_id, rejection, this.pid);
        step.state = 'failed';
        step.error = rejection;
      } else {
        const res = await completeStep(client, step, this.pid, { outbox, dispatch: taskOpen, commit: true });
        outcome.dispatched.push(...res.dispatched);
        if (res.completed) {
          outcome.events.push({ task_id: step.task_id, step_id: step.step_id, name: step.name, state: 'complete', attempts: step.attempts, result: step.result });
          if (res.stepMs !== null) this.metrics.stepLatency.observe(res.stepMs);
          this.metrics.reportsProcessed.inc({ outcome: expanded ? 'complete_expanded' : 'complete' });
        }
        if (res.taskCompleted) {
          outcome.taskEnded = { task_id: step.task_id, state: 'complete' };
          if (res.taskMs !== null) this.metrics.taskLatency.observe(res.taskMs);
        }
        return outcome;
      }
    }

    if (step.state === 'failed') {
      if (!taskOpen) {
        await closeFailedStep(client, step.step_id, this.pid);
      } else {
        const { def } = await this.templates.get(step.namespace, step.template_name, step.version);
        const policy = def.steps.find((d) => d.name === step.template_step)?.retry ?? DEFAULT_RETRY;
        const decision = decideAfterFailure(policy, step.attempts, step.error?.permanent === true);
        if (decision.action === 'retry') {
          outcome.retryAt = await scheduleRetry(client, step.step_id, decision.delayMs, this.pid);
          outcome.events.push({ task_id: step.task_id, step_id: step.step_id, name: step.name, state: 'waiting_retry', attempts: step.attempts, error: step.error });
          this.metrics.reportsProcessed.inc({ outcome: 'retry' });
          this.log.warn(
            { task_id: step.task_id, step: step.name, attempt: step.attempts, retry_in_ms: decision.delayMs, error: step.error?.message },
            'step failed; retrying',
          );
        } else {
          const reason = decision.reason === 'permanent' ? 'permanent error' : `attempts exhausted (${step.attempts} of ${policy.max_attempts})`;
          await failTask(client, step, reason, this.pid);
          outcome.taskEnded = { task_id: step.task_id, state: 'error' };
          outcome.events.push({ task_id: step.task_id, step_id: step.step_id, name: step.name, state: 'error', attempts: step.attempts, error: step.error });
          this.metrics.reportsProcessed.inc({ outcome: 'error' });
          this.log.error(
            { task_id: step.task_id, step: step.name, attempt: step.attempts, reason, error: step.error, duration_ms: Math.round(performance.now() - started) },
            'step failed; task failed',
          );
        }
      }
    }
    await client.query('COMMIT');
    return outcome;
  }

  /** Tell local listeners and waiters, and arrange the retry timer. */
  private afterCommit(o: ReportOutcome): void {
    for (const e of o.events) this.emit('step', e);
    if (o.taskEnded) {
      this.taskEvents.announce(o.taskEnded);
      this.emit('task', o.taskEnded);
    }
    if (o.retryAt) this.wakeRetriesAt(o.retryAt.getTime());
  }

  /** Messages for committed dispatches: already written (outbox) and only announced, or published now. */
  private async publish(dispatched: DispatchedStep[]): Promise<void> {
    if (dispatched.length === 0) return;
    if (this.bus.transactionalOutbox) {
      this.bus.published([...new Set(dispatched.map((d) => stepQueue(d.namespace, d.runtime)))]);
      return;
    }
    // State is committed; a failure here leaves the steps `enqueued`, and the
    // redispatch sweep sends them again.
    try {
      await this.bus.publish(dispatched.map((d) => ({ queue: stepQueue(d.namespace, d.runtime), body: { task_id: d.task_id, step_id: d.step_id } })));
    } catch (err) {
      this.log.warn({ err: describeError(err), steps: dispatched.length }, 'publishing dispatches failed; the redispatch sweep will send them');
    }
  }

  // -------------------------------------------------------------------------
  // Retries and sweeps
  // -------------------------------------------------------------------------

  /** Arrange to dispatch due retries at `at` (ms epoch), so a retry waits for its backoff, not for a poll. */
  private wakeRetriesAt(at: number): void {
    if (this.stopped || at >= this.retryTimerAt) return;
    clearTimeout(this.retryTimer);
    this.retryTimerAt = at;
    this.retryTimer = setTimeout(() => {
      this.retryTimerAt = Infinity;
      this.track(this.dispatchRetries());
    }, Math.max(0, at - Date.now()) + 2);
    this.retryTimer.unref();
  }

  private async dispatchRetries(): Promise<void> {
    try {
      const due = await dispatchDueRetries(this.db, this.pid, this.bus.transactionalOutbox);
      await this.publish(due);
      const next = await nextRetryAt(this.db);
      if (next) this.wakeRetriesAt(next.getTime());
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'dispatching due retries failed; the sweep will try again');
    }
  }

  /** What the push path may have missed. Runs every poll interval; safe on many orchestrators at once. */
  sweep(): Promise<void> {
    if (this.sweeping || this.stopped) return this.sweeping ?? Promise.resolve();
    this.sweeping = this.sweepOnce().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    try {
      if (this.bus.maintain && Date.now() - this.lastMaintenance >= MAINTENANCE_EVERY_MS) {
        this.lastMaintenance = Date.now();
        await this.bus.maintain();
      }
      await this.dispatchRetries();
      for (const id of await expireLeases(this.db, this.pid)) {
        if (this.stopped) return;
        this.log.warn({ step_id: id }, 'step lease expired (worker stopped heartbeating); applying the retry policy');
        await this.processReport(id);
      }
      await this.publish(await redispatchStale(this.db, this.pid, this.redispatchAfterMs, this.bus.transactionalOutbox));
      for (const id of await unprocessedReports(this.db, this.reportGraceMs)) {
        if (this.stopped) return;
        await this.processReport(id);
      }
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'sweep failed; retrying next interval');
    }
  }

  /** Register templates (validated definitions) in the database. */
  async registerTemplates(defs: TemplateDefinition[]): Promise<void> {
    for (const def of defs) {
      const outcome = await this.templates.register(def);
      this.log.info({ template: `${def.namespace}/${def.name}@${def.version}`, outcome }, 'template registered');
    }
  }
}
