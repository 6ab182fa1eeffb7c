import type { Database } from '../store/database.js';
import type { Logger } from '../shared/logger.js';
import type { LocalClaim, MessageBus } from '../messaging/types.js';
import { createTask, createTasks, getTaskState, type BatchTaskOutcome, type NewBatchTask } from '../store/tasks.js';
import type { StatementOutcome } from '../store/events.js';
import {
  dispatchDueRetries,
  expireWaiters,
  nextDueAt,
  redispatchStale,
  requeueLostSteps,
  staleOutbox,
  startDueTasks,
  watchedStepNotices,
  wakeWaiting,
  type Notice,
} from '../store/dispatch.js';
import { CANCEL_CHANNEL, cancelTask, retryTask, signalStep, signalStepOf, type SignalTarget } from '../store/control.js';
import { compileInputSchema } from '../core/template/input-schema.js';
import { DURATION_EXAMPLES, durationMs } from '../core/duration.js';
import { deregisterProcess, forgetStaleProcesses, heartbeatProcess, registerProcess } from '../store/processes.js';
import { analyzeNeverAnalyzed, deleteExpiredTasks, describeMaintenance, vacuumTables } from '../store/maintenance.js';
import { initialSteps, type PlannedStep } from '../core/plan.js';
import { stepQueue } from '../messaging/queues.js';
import type { TemplateDefinition } from '../core/template/types.js';
import type { TaskBatchItem } from '../core/api-types.js';
import { TERMINAL_TASK_STATES } from '../core/states.js';
import { NotFoundError, ValidationError, describeError } from '../shared/errors.js';
import { TemplateCatalog } from './template-catalog.js';
import { TaskEvents } from './task-events.js';
import { OrchestratorMetrics } from './metrics.js';
import { ScheduleBook } from './schedules.js';
import { ChildWorkflows } from './child-workflows.js';
import { traceClock, traceTaskCreated, tracing } from '../telemetry/index.js';
import { RetryTimer } from '../shared/retry-timer.js';
import { writesOutbox } from '../store/delivery.js';

export interface OrchestratorOptions {
  db: Database;
  bus: MessageBus;
  log: Logger;
  processId: string;
  /** Sweep period: due retries, lost workers, unsent messages. */
  pollIntervalMs?: number;
  /** A worker that has not heartbeaten for this long is gone: its running steps run again. */
  leaseMs?: number;
  /** A step that lost its worker this many times fails (its handler probably kills the process). */
  maxLosses?: number;
  /** Broker only: an `enqueued` step unclaimed for this long is dispatched again (a lost message). */
  redispatchAfterMs?: number;
  /** Finished tasks older than this are deleted (0: kept forever). */
  retentionMs?: number;
  /** With autovacuum off, how often weft vacuums and analyses its tables. */
  vacuumIntervalMs?: number;
  /** A schedule's firing later than this is missed and follows the schedule's catch_up policy (default 60 s). */
  scheduleGraceMs?: number;
}

export interface CreateTaskRequest {
  namespace: string;
  name: string;
  version?: string;
  context?: unknown;
  idempotency_key?: string;
  /** Start at this time (RFC 3339 with a zone); the task is pending until then. */
  run_at?: string;
  /** Start this much later (e.g. "15m"); instead of run_at. */
  delay?: string;
}

/**
 * When a task asked to start later begins: `run_at` (RFC 3339 with its zone)
 * or now + `delay` ("15m"); undefined to start now. ValidationError naming the
 * field for anything else.
 */
function startTime(req: CreateTaskRequest): Date | undefined {
  if (req.run_at !== undefined && req.delay !== undefined) {
    throw new ValidationError('give run_at or delay, not both: run_at is a time, delay a duration from now', 'run_at');
  }
  if (req.delay !== undefined) {
    const ms = durationMs(req.delay);
    if (ms === undefined) throw new ValidationError(`delay ${JSON.stringify(req.delay)} is not a duration; write ${DURATION_EXAMPLES}`, 'delay');
    return new Date(Date.now() + ms);
  }
  if (req.run_at === undefined) return undefined;
  const at = RFC3339.test(req.run_at) ? new Date(req.run_at) : undefined;
  if (!at || Number.isNaN(at.getTime())) {
    throw new ValidationError(
      `run_at ${JSON.stringify(req.run_at)} is not an RFC 3339 time with its zone; write e.g. 2026-12-24T09:00:00Z or 2026-12-24T10:00:00+01:00`,
      'run_at',
    );
  }
  return at;
}
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** What became of one item of POST /v1/tasks/batch: its task, or its error (the other items are unaffected). */
export type BatchItemResult = TaskBatchItem;

/** An item's own error: bad input and unknown templates are answered per item; anything else fails the batch. */
function batchItemError(err: unknown): Extract<BatchItemResult, { error: unknown }>['error'] {
  if (err instanceof ValidationError) return { code: err.code, message: err.message, path: err.path, details: err.details };
  if (err instanceof NotFoundError) return { code: err.code, message: err.message };
  throw err;
}

/** A stored item's answer: created, the same request replayed (existing), or a key taken by a different request (conflict). */
function batchItemResult(o: BatchTaskOutcome, req: CreateTaskRequest): BatchItemResult {
  if (o.outcome === 'created' || (o.outcome === 'existing' && o.differs.length === 0))
    return { index: o.item, id: o.taskId, outcome: o.outcome, ...(o.runAt ? { run_at: o.runAt.toISOString() } : {}) };
  const key = JSON.stringify(req.idempotency_key);
  if (o.outcome === 'gone') {
    return {
      index: o.item,
      error: { code: 'conflict', message: `the task holding idempotency_key ${key} was deleted as this batch ran; send the item again` },
    };
  }
  return {
    index: o.item,
    error: {
      code: 'conflict',
      message:
        `a task with idempotency_key ${key} already exists (${o.taskId}) and was created with a different ${o.differs.join(', ')}; ` +
        `use a new key to create another task, or GET /v1/tasks/${o.taskId}`,
      task_id: o.taskId,
      differs: o.differs,
    },
  };
}

/** How often the sweep vacuums the tiny tables that churn every second. */
const HOT_VACUUM_EVERY_MS = 5_000;
/** Outbox rows older than this were left by a publisher that died (or failed) after its COMMIT. */
const OUTBOX_GRACE_MS = 1_000;
/** Process rows that have not heartbeaten for this long are forgotten. */
const FORGET_PROCESSES_AFTER_MS = 24 * 3600_000;

/**
 * An orchestrator process: creates tasks, and sweeps up what must happen
 * without a worker: retries whose backoff elapsed, steps whose worker is
 * gone, messages a crash left unsent, and the tables' upkeep. Workers move
 * tasks on themselves (src/worker/worker.ts, weft.finish_steps); any number
 * of orchestrators may share one database.
 */
export class Orchestrator {
  readonly templates: TemplateCatalog;
  readonly taskEvents: TaskEvents;
  readonly metrics: OrchestratorMetrics;
  readonly schedules: ScheduleBook;
  private readonly children: ChildWorkflows;
  private readonly db: Database;
  private readonly bus: MessageBus;
  private readonly log: Logger;
  private readonly pid: string;
  private readonly pollIntervalMs: number;
  private readonly leaseMs: number;
  private readonly maxLosses: number;
  private readonly redispatchAfterMs: number;
  private readonly retentionMs: number;
  private readonly vacuumIntervalMs: number;
  private autovacuum = true;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Dispatches due retries exactly when due; the sweep is only the safety net. */
  private readonly retries = new RetryTimer(() => {
    const work = this.dispatchRetries();
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  });
  private sweeping: Promise<void> | undefined;
  private outboxSweeping: Promise<void> | undefined;
  /** How long one outbox sweep waits for the broker's confirms: a few sweep periods, at least 2 s. */
  private readonly outboxWaitMs: number;
  private lastHotVacuum = 0;
  private lastVacuum = Date.now();
  private lastRetention = 0;
  /** Since when every sweep reached the database: leases are judged only after a full lease of it. */
  private dbUpSince = Date.now();
  private stopped = false;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly unsubscribe: Array<() => void> = [];

  constructor(options: OrchestratorOptions) {
    this.db = options.db;
    this.bus = options.bus;
    this.log = options.log.child({ component: 'orchestrator', process: options.processId });
    this.pid = options.processId;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.maxLosses = options.maxLosses ?? 5;
    this.redispatchAfterMs = options.redispatchAfterMs ?? 30_000;
    this.retentionMs = options.retentionMs ?? 0;
    this.vacuumIntervalMs = options.vacuumIntervalMs ?? 30_000;
    this.outboxWaitMs = Math.max(2_000, 5 * this.pollIntervalMs);
    this.templates = new TemplateCatalog(this.db);
    this.taskEvents = new TaskEvents(this.db, this.log);
    this.metrics = new OrchestratorMetrics(this.db, this.bus);
    this.schedules = new ScheduleBook(this.db, this.templates, this, this.log, this.pid, options.scheduleGraceMs);
    this.children = new ChildWorkflows({
      db: this.db,
      log: this.log,
      pid: this.pid,
      delivery: this.bus.delivery,
      createTask: (req) => this.createTask(req),
      deliver: (o) => this.deliver(o),
    });
  }

  async start(): Promise<void> {
    await this.taskEvents.start();
    this.unsubscribe.push(
      this.taskEvents.onTaskEnd((e) => {
        this.children.childEnded(e);
        this.metrics.tasksEnded.inc({ state: e.state });
        if (typeof e.ms === 'number') this.metrics.taskLatency.observe(e.ms);
      }),
    );
    await registerProcess(this.db, { id: this.pid, kind: 'orchestrator', info: { messaging: this.bus.backend } });
    await this.children.start();
    this.autovacuum = await describeMaintenance(this.db, this.log, this.vacuumIntervalMs);
    const analysed = await analyzeNeverAnalyzed(this.db);
    if (analysed.length) this.log.debug({ tables: analysed }, 'analysed tables that had no statistics yet');
    this.sweepTimer = setInterval(() => void this.sweep(), this.pollIntervalMs);
    this.sweepTimer.unref();
    void this.sweep();
    this.log.info({ messaging: this.bus.backend }, 'orchestrator started');
  }

  /** Stop the timers and let the sweep in hand finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweepTimer);
    this.retries.stop();
    await Promise.allSettled([...this.inFlight, this.sweeping, this.outboxSweeping, this.children.stop()]);
    for (const off of this.unsubscribe.splice(0)) off();
    await this.taskEvents.close();
    await deregisterProcess(this.db, this.pid).catch(() => undefined);
    this.log.info('orchestrator stopped');
  }

  // -------------------------------------------------------------------------
  // Tasks
  // -------------------------------------------------------------------------

  /**
   * Create a task: check the template exists (NotFoundError) and the
   * context satisfies its input_schema (ValidationError naming the field),
   * then write the task, its initial steps and edges and enqueue the ready
   * ones, all in one statement, and get them to workers. Returns the task id.
   */
  async createTask(req: CreateTaskRequest): Promise<{ id: string; dispatched: number; run_at?: Date }> {
    const t0 = traceClock();
    const runAt = startTime(req);
    const { def, context } = await this.resolveRequest(req);
    const steps = initialSteps(def);
    const claim = runAt ? undefined : this.claimLocally(def.namespace, steps);
    let created: Awaited<ReturnType<typeof createTask>> | undefined;
    try {
      created = await createTask(
        this.db,
        { namespace: def.namespace, name: def.name, version: def.version, context, idempotencyKey: req.idempotency_key, steps, runAt },
        this.pid,
        this.bus.delivery,
        claim,
      );
    } finally {
      claim?.settle(created?.claimed ?? []);
    }
    const { taskId, dispatch } = created;
    if (tracing.enabled) traceTaskCreated(taskId, def, t0, dispatch.steps.length);
    this.taskEvents.created([taskId]);
    // Told only while some dashboard watches the task list: otherwise a creation costs nothing more.
    const started = this.taskEvents.startsWatched()
      ? [this.taskEvents.startNotice({ task_id: taskId, state: runAt ? 'pending' : 'running', namespace: def.namespace, name: def.name, cause: 'created' })]
      : undefined;
    this.bus.deliver(dispatch, started);
    this.metrics.tasksCreated.inc();
    if (this.log.isLevelEnabled('debug')) this.log.debug({ task_id: taskId, dispatched: dispatch.steps.length }, 'task created');
    // Started exactly on time by this orchestrator's timer (any orchestrator's sweep is the safety net).
    if (runAt) this.retries.wakeAt(runAt.getTime());
    return { id: taskId, dispatched: dispatch.steps.length + created.claimed.length, ...(runAt ? { run_at: runAt } : {}) };
  }

  /**
   * A worker of this process (weft run: orchestrator and workers in one
   * process, on the PostgreSQL queue) with free slots on the queues of the
   * task's ready steps takes them in the create statement itself: one commit
   * instead of the create's and its claim's, and no wake-up.
   */
  private claimLocally(namespace: string, steps: PlannedStep[]): LocalClaim | undefined {
    if (!this.bus.claimLocally) return undefined;
    const ready = steps.filter((s) => s.parents.length === 0 && !s.wait);
    if (ready.length === 0) return undefined;
    return this.bus.claimLocally([...new Set(ready.map((s) => stepQueue(namespace, s.runtime)))], ready.length);
  }

  /**
   * Signal a waiting `wait` step (by task and step name, or by its callback
   * token): `payload` is checked against the step's payload_schema
   * (ValidationError naming the field), then becomes the step's result; its
   * children are released and its task may end, in one commit
   * (weft.signal_step). NotFoundError for no such task, step or token;
   * ConflictError naming the state for a step that is not waiting.
   */
  async signalStep(target: SignalTarget, payload: unknown, by: string): Promise<{ task_id: string; step: string; state: 'complete' }> {
    const step = await signalStepOf(this.db, target);
    const schema = step?.type === 'wait' && step.state === 'waiting' ? step.wait?.schema : undefined;
    if (schema) {
      const check = compileInputSchema({ input_schema: schema }, 'payload')(payload);
      if (!check.ok) {
        throw new ValidationError(
          `the signal's payload does not match the payload_schema of step ${step!.name}: ${check.problems.map((p) => p.message).join('; ')}`,
          check.problems[0]!.path,
          check.problems,
        );
      }
    }
    const o = await signalStep(this.db, target, payload, { by, pid: this.pid, delivery: this.bus.delivery });
    this.deliver(o);
    const done = o.finished[0];
    this.log.info({ task_id: done?.task_id, step: done?.name, by }, 'wait step signalled');
    return { task_id: done?.task_id ?? step!.task_id, step: done?.name ?? step!.name, state: 'complete' };
  }

  /**
   * Create many tasks in one statement and one commit (POST /v1/tasks/batch).
   * Each item is resolved and checked on its own: an unknown template or a
   * context failing its input_schema is that item's error (with its index),
   * and the other items are created. An item whose idempotency key is taken
   * answers the task holding it (`existing`), or a conflict naming the
   * fields that differ, so a replayed batch creates nothing twice.
   */
  async createTasks(reqs: CreateTaskRequest[]): Promise<BatchItemResult[]> {
    const results: BatchItemResult[] = new Array(reqs.length);
    const ready: NewBatchTask[] = [];
    const defs = new Map<number, TemplateDefinition>();
    // One catalog look-up per template the batch names, however many items name it (a cold cache is then one query, not N).
    const lookups = new Map<string, ReturnType<TemplateCatalog['get']>>();
    const lookUp = (ns: string, name: string, version?: string) => {
      const key = JSON.stringify([ns, name, version ?? null]);
      let found = lookups.get(key);
      if (!found) lookups.set(key, (found = this.templates.get(ns, name, version)));
      return found;
    };
    await Promise.all(
      reqs.map(async (req, item) => {
        try {
          const runAt = startTime(req);
          const { def, context } = await this.resolveRequest(req, lookUp);
          defs.set(item, def);
          ready.push({
            item,
            namespace: def.namespace,
            name: def.name,
            version: def.version,
            askedVersion: req.version,
            context,
            idempotencyKey: req.idempotency_key,
            steps: initialSteps(def),
            runAt,
          });
        } catch (err) {
          results[item] = { index: item, error: batchItemError(err) };
        }
      }),
    );
    ready.sort((a, b) => a.item - b.item);
    const { outcomes, dispatch } = await createTasks(this.db, ready, this.pid, this.bus.delivery);
    const started: Notice[] = [];
    const watched = this.taskEvents.startsWatched();
    for (const o of outcomes) results[o.item] = batchItemResult(o, reqs[o.item]!);
    this.taskEvents.created(outcomes.filter((o) => o.outcome === 'created').map((o) => o.taskId));
    for (const o of outcomes) {
      if (o.outcome !== 'created') continue;
      const def = defs.get(o.item)!;
      if (watched)
        started.push(
          this.taskEvents.startNotice({
            task_id: o.taskId,
            state: o.runAt ? 'pending' : 'running',
            namespace: def.namespace,
            name: def.name,
            cause: 'created',
          }),
        );
    }
    this.bus.deliver(dispatch, started.length ? started : undefined);
    // Delayed items are started exactly on time by this orchestrator's timer (any orchestrator's sweep is the safety net).
    const firstStart = Math.min(...ready.filter((t) => t.runAt).map((t) => t.runAt!.getTime()));
    if (Number.isFinite(firstStart)) this.retries.wakeAt(firstStart);
    const created = outcomes.filter((o) => o.outcome === 'created').length;
    this.metrics.tasksCreated.inc(created);
    if (this.log.isLevelEnabled('debug')) this.log.debug({ items: reqs.length, created, dispatched: dispatch.steps.length }, 'task batch created');
    return results;
  }

  /** The template version a request names, and its context checked against the input_schema (ValidationError naming the path). */
  private async resolveRequest(
    req: CreateTaskRequest,
    lookUp: TemplateCatalog['get'] = (ns, name, version) => this.templates.get(ns, name, version),
  ): Promise<{ def: TemplateDefinition; context: unknown }> {
    const { def, checkInput } = await lookUp(req.namespace, req.name, req.version);
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
    return { def, context };
  }

  /**
   * Cancel a pending or running task (NotFoundError, or ConflictError naming
   * its state once it has ended): its open steps become cancelled in one
   * commit; then waiters hear it ended, and each worker running one of its
   * steps is told to interrupt it (`weft_cancel`). `by` and `reason` are kept in the audit rows.
   */
  async cancelTask(taskId: string, by: string, reason?: string): Promise<{ state: 'cancelled'; interrupted: number }> {
    const o = await cancelTask(this.db, taskId, by, this.pid, reason);
    const notices: Notice[] = o.taskEnds.map((t) => ({ channel: 'weft_task', payload: JSON.stringify(t) }));
    notices.push(...watchedStepNotices(o));
    if (o.interrupted.length) notices.push({ channel: CANCEL_CHANNEL, payload: JSON.stringify({ steps: o.interrupted.map((i) => i.step_id) }) });
    this.bus.deliver(o.dispatch, notices);
    this.log.info({ task_id: taskId, by, reason, interrupted: o.interrupted.length }, 'task cancelled');
    return { state: 'cancelled', interrupted: o.interrupted.length };
  }

  /**
   * Run a task that ended in error or was cancelled again from its failed and
   * cancelled steps, or from one named step (see weft.retry_task); delivers
   * the steps it made ready.
   */
  async retryTask(taskId: string, opts: { step?: string; by: string }): Promise<{ state: 'running'; enqueued: number }> {
    const o = await retryTask(this.db, taskId, { ...opts, pid: this.pid, delivery: this.bus.delivery });
    const notices = watchedStepNotices(o);
    if (this.taskEvents.startsWatched()) notices.push(this.taskEvents.startNotice({ task_id: taskId, state: 'running', cause: 'retried', by: opts.by }));
    this.bus.deliver(o.dispatch, notices);
    this.log.info({ task_id: taskId, step: opts.step, by: opts.by, enqueued: o.enqueued }, 'task retried');
    return { state: 'running', enqueued: o.enqueued };
  }

  /** Resolve when the task has ended (true) or `timeoutMs` passed (false); NotFoundError for an unknown task. */
  async waitForTask(taskId: string, timeoutMs: number, signal?: AbortSignal, firstCheck?: () => Promise<boolean>): Promise<boolean> {
    // One read of the state, made once subscribed (so an end in between is not missed); no such task rejects.
    // None for a task this orchestrator created and has heard no end of since (TaskEvents.knownRunning).
    // `firstCheck`, when given, makes that first read instead (the long-poll's reads the view too).
    return this.taskEvents.waitForEnd(
      taskId,
      timeoutMs,
      async () => {
        const state = await getTaskState(this.db, taskId);
        if (state === undefined) throw new NotFoundError(`no task ${taskId}`);
        return TERMINAL_TASK_STATES.has(state);
      },
      signal,
      firstCheck,
    );
  }

  // -------------------------------------------------------------------------
  // Sweeps
  // -------------------------------------------------------------------------

  /**
   * After COMMIT of a sweep statement or a signal: deliver what it enqueued,
   * tell waiters what ended, and live watchers the step changes of the tasks
   * they watch (a sleep that ended, a wait that timed out or was signalled, a
   * step entering `waiting`).
   */
  private deliver(o: StatementOutcome, also: Notice[] = []): void {
    const notices: Notice[] = o.taskEnds.map((t) => ({ channel: 'weft_task', payload: JSON.stringify(t) }));
    notices.push(...watchedStepNotices(o), ...also);
    this.bus.deliver(o.dispatch, notices);
  }

  /** Delayed tasks started by weft.start_due_tasks (each released a root step), told to task-list watchers as running. */
  private startedNotices(o: StatementOutcome): Notice[] {
    if (!this.taskEvents.startsWatched()) return [];
    const tasks = new Set([...o.dispatch.steps.map((s) => s.task_id), ...o.waiting.map((w) => w.task_id)]);
    return [...tasks].map((task_id) => this.taskEvents.startNotice({ task_id, state: 'running', cause: 'start_time' }));
  }

  /**
   * What is due by time: retries whose backoff elapsed, delayed tasks whose
   * start came, sleeps that ended and waits that timed out; then a timer for
   * the next one.
   */
  private async dispatchRetries(): Promise<void> {
    try {
      this.deliver(await dispatchDueRetries(this.db, this.pid, this.bus.delivery));
      const started = await startDueTasks(this.db, this.pid, this.bus.delivery);
      this.deliver(started, this.startedNotices(started));
      this.deliver(await wakeWaiting(this.db, this.pid, this.bus.delivery));
      const next = await nextDueAt(this.db);
      if (next) this.retries.wakeAt(next.getTime());
    } catch (err) {
      this.log.warn(
        { err: describeError(err).message },
        'dispatching what is due (retries, delayed starts, sleeps, wait timeouts) failed; the sweep will try again',
      );
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
    const now = Date.now();
    try {
      await heartbeatProcess(this.db, this.pid);
    } catch (err) {
      // The database is unreachable: judge no lease until it has been back for a full lease,
      // so workers that were alive but could not heartbeat keep their steps.
      this.dbUpSince = Infinity;
      this.log.warn({ err: describeError(err).message }, 'sweep: the database is unreachable; retrying next interval');
      return;
    }
    if (this.dbUpSince === Infinity) {
      this.dbUpSince = now;
      this.log.info({ lease_ms: this.leaseMs }, 'the database is reachable again; leases are judged again after a full lease');
    }
    try {
      await this.dispatchRetries();
      await this.fireSchedules();
      await this.children.pass();
      if (now - this.dbUpSince >= this.leaseMs) {
        const lost = await requeueLostSteps(this.db, this.pid, this.leaseMs, this.maxLosses, this.bus.delivery);
        for (const s of lost.dispatch.steps) this.log.warn({ task_id: s.task_id, step: s.name }, 'the worker running this step is gone; running it again');
        for (const f of lost.finished) this.log.error({ task_id: f.task_id, step: f.name }, 'step lost its worker too many times; task failed');
        this.deliver(lost);
      }
      // Broker messages go out on their own: a broker that blocks publishers (a disk or memory alarm) holds up
      // only them, never the lease and retry sweeps or this heartbeat (issue 15).
      if (writesOutbox(this.bus.delivery) && !this.outboxSweeping) {
        this.outboxSweeping = this.sweepOutbox().finally(() => {
          this.outboxSweeping = undefined;
        });
      }
      if (now - this.lastHotVacuum >= HOT_VACUUM_EVERY_MS) {
        this.lastHotVacuum = now;
        await expireWaiters(this.db);
        await forgetStaleProcesses(this.db, FORGET_PROCESSES_AFTER_MS);
        await vacuumTables(this.db, 'hot');
      }
      if (!this.autovacuum && now - this.lastVacuum >= this.vacuumIntervalMs) {
        this.lastVacuum = now;
        await vacuumTables(this.db, 'all');
      }
      if (this.retentionMs > 0 && now - this.lastRetention >= 10 * this.pollIntervalMs) {
        this.lastRetention = now;
        let deleted = 0;
        for (let n = -1; n !== 0 && deleted < 5_000 && !this.stopped; deleted += n) n = await deleteExpiredTasks(this.db, this.retentionMs);
        if (deleted) this.log.info({ tasks: deleted, retention_ms: this.retentionMs }, 'deleted finished tasks past their retention');
      }
    } catch (err) {
      this.log.warn({ err: describeError(err).message }, 'sweep failed; retrying next interval');
    }
  }

  /** Due schedules: a failure is logged and the next sweep tries again (each firing's idempotency key keeps it to one task). */
  private async fireSchedules(): Promise<void> {
    try {
      await this.schedules.sweep();
    } catch (err) {
      this.log.warn({ err: describeError(err).message }, 'firing due schedules failed; the next sweep tries again');
    }
  }

  /**
   * Broker only: publish the outbox rows a crash (or a failed publish) left
   * behind, then dispatch again the steps no worker claimed in time. One at
   * a time; the sweep starts the next one once this one has ended, and the
   * wait for the broker's confirms is bounded by {@link outboxWaitMs}.
   */
  private async sweepOutbox(): Promise<void> {
    try {
      await this.bus.republish(await staleOutbox(this.db, OUTBOX_GRACE_MS), { timeoutMs: this.outboxWaitMs });
      this.deliver(await redispatchStale(this.db, this.pid, this.redispatchAfterMs));
    } catch (err) {
      this.log.warn({ err: describeError(err).message }, 'outbox sweep failed; the messages stay in the outbox and are sent by a later sweep');
    }
  }

  /** Register templates (validated definitions) in the database, with the schedules their files declare. */
  async registerTemplates(defs: TemplateDefinition[]): Promise<void> {
    for (const def of defs) {
      const outcome = await this.templates.register(def);
      this.log.info({ template: `${def.namespace}/${def.name}@${def.version}`, outcome }, 'template registered');
      await this.saveDeclaredSchedules(def);
    }
  }

  /**
   * Save the schedules a template file declares (`schedules:`), pinned to
   * its version: a schedule of the same name is changed to match, keeping
   * paused as it is (docs/schedules.md).
   */
  async saveDeclaredSchedules(def: TemplateDefinition): Promise<void> {
    const ref = `${def.namespace}/${def.name}@${def.version}`;
    for (const [i, s] of (def.schedules ?? []).entries()) {
      await this.schedules.save(
        { ...s, template: ref },
        { actor: this.pid, source: 'template', replace: true, paused: s.paused, prefix: `${ref} schedules[${i}].` },
      );
    }
  }
}
