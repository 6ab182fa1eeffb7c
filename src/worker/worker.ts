import { EventEmitter } from 'node:events';
import type { Database } from '../store/database.js';
import type { Logger } from '../shared/logger.js';
import type { MessageBus, StepConsumer, Subscription } from '../messaging/types.js';
import { stepQueue } from '../messaging/queues.js';
import type { ClaimedStep, FinishedStep, StatementOutcome, TaskEnded } from '../store/events.js';
import type { WaiterRegistration } from '../store/claim.js';
import { watchedStepNotices, type Notice } from '../store/dispatch.js';
import { describeError } from '../shared/errors.js';
import { BucketHistogram, LATENCY_MS_BUCKETS } from '../shared/histogram.js';
import { RetryTimer } from '../shared/retry-timer.js';
import { storableErrorRecord } from '../core/error-record.js';
import { traceClock } from '../telemetry/index.js';
import type { RunOutcome, StepErrorRecord, StepRunner } from './runner.js';
import { failureFinish, judgeRun, policyUnreadFinish, retryPolicyOf, runnerFailure, type Finish } from './step-outcome.js';
import { FinishBatcher, type ClaimTarget, type FinishHost, type Settlement } from './finish-batcher.js';
import { PgWorkerStore, type WorkerStore } from './worker-store.js';
import { WorkerEvents } from './worker-events.js';
import { countSteps, traceSteps, type WorkerCounts } from './observers.js';

interface WorkerSettings {
  bus: MessageBus;
  log: Logger;
  runner: StepRunner;
  workerId: string;
  /** Namespaces to serve; default: every namespace with a step of this runtime (re-checked periodically). */
  namespaces?: string[];
  /** Steps run at once (the runner may allow fewer, see StepRunner.capacity). */
  concurrency?: number;
  /** How long this worker's steps survive without a heartbeat (WEFT_LEASE_MS); it heartbeats far more often. */
  leaseMs?: number;
  /** How often to look for new namespaces when none were given. */
  namespaceRefreshMs?: number;
  /** Extra facts for weft.processes.info (e.g. the health port). */
  info?: Record<string, unknown>;
  /** How often to look for steps claimed in this worker's name that it never started (default 5 s). */
  orphanCheckMs?: number;
  /** The wait after `failures` failed writes of outcomes in a row (default: backoff from 100 ms to 5 s). */
  flushRetryDelayMs?: (failures: number) => number;
}

/** The database as a pool (the worker's statements are made on it), or any {@link WorkerStore} (unit tests). */
export type WorkerOptions = WorkerSettings & ({ db: Database; store?: undefined } | { store: WorkerStore; db?: undefined });

/** A step's outcome as `weft run` and the tests see it. */
export interface StepEvent {
  task_id: string;
  step_id: string;
  name: string;
  state: 'complete' | 'waiting_retry' | 'error' | 'cancelled';
  attempts: number;
  result?: unknown;
  error?: unknown;
}

interface Running {
  step: ClaimedStep;
  /** When this worker started it (after its claim committed), for the step latency histogram. */
  startedAt: number;
  /** Settles once the step's finish has committed (or the step was found lost). */
  done: Promise<void>;
  settle: () => void;
  /** Its task was cancelled: the outcome is not written (the step is `cancelled` already). */
  cancelled?: boolean;
}

/** How long a heartbeat may take to come; the dashboard shows a worker as gone after a few missed ones. */
const HEARTBEAT_MS = 1_000;
/** How often a worker looks for steps claimed in its name that it never started, and how old they must be. */
const ORPHAN_CHECK_MS = 5_000;

/**
 * A worker process's engine. It claims ready steps of its queues, runs their
 * handlers through its runner and finishes them itself (issue 8): one
 * statement records each outcome, moves the task on (children counted down,
 * the task completed or failed, a retry scheduled) and claims the next steps
 * for this worker, so a chain runs without any other process or round trip.
 *
 * The worker keeps the lifecycle; each concern has its own module:
 *   - step-outcome.ts   what a run's outcome means (pure: success, retry,
 *                       failure for good, refusal);
 *   - finish-batcher.ts group commit of finishes, slot reservations, backoff;
 *   - worker-store.ts   every statement, behind one interface (fakes in tests);
 *   - observers.ts      counters, logs and spans, subscribed to worker-events.ts.
 *
 * - Every finish carries the attempt number its claim handed out; the
 *   database accepts it only from the attempt that holds the step.
 * - A heartbeat of the process row (weft.processes) every second is the
 *   lease on all its running steps.
 * - `stop()` stops claiming and lets the steps in flight finish.
 *
 * Public events: `step` (a {@link StepEvent}), `task` (a task this worker
 * ended), `broken` (the runtime cannot be trusted any more).
 */
export class Worker extends EventEmitter {
  private readonly store: WorkerStore;
  private readonly bus: MessageBus;
  private readonly log: Logger;
  private readonly runner: StepRunner;
  readonly id: string;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly refreshMs: number;
  private readonly fixedNamespaces: string[] | undefined;
  private readonly extraInfo: Record<string, unknown>;
  private readonly orphanCheckMs: number;
  private readonly events = new WorkerEvents();
  private readonly batcher: FinishBatcher;
  /** Dispatches a retry this worker scheduled when it is due (the orchestrator's sweep is the safety net). */
  private readonly retries: RetryTimer;
  private served: string[] = [];
  private queues: string[] = [];
  /** Slots reserved for steps a statement of this process claims for this worker (a task's creation: StepConsumer.reserve). */
  private adopting = 0;
  private subscription: Subscription | undefined;
  private waiter: WaiterRegistration | undefined;
  /** By `step id#attempt`: a retry of the same step on this worker is another entry. */
  private readonly running = new Map<string, Running>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private unlistenCancel: (() => void) | undefined;
  private watchingBroken = false;
  private orphansCheckedAt = 0;
  /** Counters for /health, /metrics and weft.processes.info. */
  readonly counts: WorkerCounts = { claimed: 0, succeeded: 0, failed: 0, retried: 0, lost: 0, cancelled: 0, given_back: 0 };
  /** From starting a step to its outcome committed (ms); published with the heartbeat for the orchestrators' /metrics. */
  readonly stepLatency = new BucketHistogram(LATENCY_MS_BUCKETS);

  constructor(options: WorkerOptions) {
    super();
    this.bus = options.bus;
    this.runner = options.runner;
    this.id = options.workerId;
    this.log = options.log.child({ component: 'worker', runtime: options.runner.runtime, worker: options.workerId });
    this.store = options.store ?? new PgWorkerStore(options.db, options.workerId, options.bus.delivery, this.log);
    this.concurrency = Math.max(1, Math.min(options.concurrency ?? 32, options.runner.capacity ?? Infinity));
    this.leaseMs = options.leaseMs ?? 30_000;
    this.refreshMs = options.namespaceRefreshMs ?? 5_000;
    this.fixedNamespaces = options.namespaces?.length ? options.namespaces : undefined;
    this.extraInfo = options.info ?? {};
    this.orphanCheckMs = options.orphanCheckMs ?? ORPHAN_CHECK_MS;
    this.retries = new RetryTimer(() => this.dispatchDueRetries());
    this.batcher = new FinishBatcher({
      sink: this.store,
      host: this.finishHost(),
      log: this.log,
      runtime: this.runner.runtime,
      retryDelayMs: options.flushRetryDelayMs,
      clock: traceClock,
    });
    countSteps(this.events, this.counts, this.log);
    traceSteps(this.events);
    this.publishEvents();
  }

  get runtime(): string {
    return this.runner.runtime;
  }

  /** Finish statements and the runs they carried: their ratio is the group commit's batch size. */
  get flushes(): { readonly statements: number; readonly runs: number } {
    return this.batcher.stats;
  }

  /** Namespaces being served now. */
  namespaces(): string[] {
    return [...this.served];
  }

  /** Steps in flight right now. */
  inFlight(): number {
    return this.running.size;
  }

  /**
   * `healthy`, or `degraded` once writing step outcomes has failed several
   * times in a row: the reason names the error, since when, and how many
   * outcomes wait (for /health).
   */
  health(): { status: 'healthy' } | { status: 'degraded'; reason: string } {
    return this.batcher.health();
  }

  /** Register, listen and start consuming; if that fails (a dependency is down) it may be called again. */
  async start(): Promise<void> {
    await this.store.register(this.runner.runtime, this.info());
    // A runtime can break between steps (too many handlers stuck at once), not only in one.
    if (!this.watchingBroken) {
      this.watchingBroken = true;
      this.runner.onBroken?.((reason) => this.emit('broken', this.runner.runtime, reason));
    }
    this.unlistenCancel ??= await this.store.listenCancel((payload) => this.onCancel(payload));
    this.heartbeatTimer ??= setInterval(() => void this.beat(), Math.min(HEARTBEAT_MS, Math.max(50, Math.floor(this.leaseMs / 3))));
    this.heartbeatTimer.unref();
    await this.serve(this.fixedNamespaces ?? (await this.store.namespaces(this.runner.runtime)));
    if (!this.fixedNamespaces) {
      this.refreshTimer = setInterval(() => {
        this.store.namespaces(this.runner.runtime).then(
          (ns) => this.serve(ns),
          (err) => this.log.warn({ err: describeError(err).message }, 'looking for new namespaces failed'),
        );
      }, this.refreshMs);
      this.refreshTimer.unref();
    }
    this.log.info({ namespaces: this.served, concurrency: this.concurrency, handlers: this.runner.handlerKeys().length }, 'worker started');
  }

  /** Consume the queues of these namespaces (one subscription covering all of them). */
  private async serve(namespaces: string[]): Promise<void> {
    const all = [...new Set([...this.served, ...namespaces])].sort();
    if (this.stopping || all.length === this.served.length) return;
    const first = this.served.length === 0;
    const queues = all.map((ns) => stepQueue(ns, this.runner.runtime));
    const previous = this.subscription;
    // The consumer reads this.queues when it claims: set them for the new subscription, back if it fails.
    const before = this.queues;
    this.queues = queues;
    try {
      this.subscription = await this.bus.consume(queues, this.consumer(), { prefetch: this.concurrency });
    } catch (err) {
      this.queues = before;
      throw err;
    }
    this.served = all;
    this.waiter = this.subscription.waiter;
    // Slots freed while consume() was attaching queues poked no one (or the
    // previous subscription): a broker consumer may hold a delivery it took
    // while busy, and with a prefetch of 1 the broker sends nothing more on
    // that queue until it is claimed (issue 15). Look again now.
    this.subscription.poke();
    await previous?.stop();
    if (!first) this.log.info({ namespaces: all }, 'serving new namespaces');
  }

  /** Slots free for a claim: not running a step, not promised to a finish's claim or to a claim made for this worker elsewhere in the process. */
  private room(): number {
    return this.stopping ? 0 : this.concurrency - this.running.size - this.batcher.reserved - this.adopting;
  }

  private consumer(): StepConsumer {
    return {
      room: () => this.room(),
      workerId: this.id,
      reserve: (n) => {
        const k = Math.max(0, Math.min(n, this.room()));
        this.adopting += k;
        return k;
      },
      adopt: (claimed, reserved) => {
        this.adopting -= reserved;
        if (claimed.length && this.stopping) return this.giveBack(claimed, 'claimed for this worker while it was stopping');
        if (claimed.length) this.startAll(claimed);
        // Slots the claim did not fill are free again.
        if (claimed.length < reserved) this.subscription?.poke();
      },
      claimQueued: async (room, waiter) => {
        const t0 = traceClock();
        const outcome = await this.store.claimQueued(this.queues, room, waiter);
        this.startAll(outcome.claimed, t0);
        this.announce(outcome, []);
        return outcome.claimed.length;
      },
      claimDelivered: async (stepIds) => {
        const t0 = traceClock();
        const outcome = await this.store.claimIds(stepIds);
        this.startAll(outcome.claimed, t0);
        this.announce(outcome, []);
      },
    };
  }

  // ---------------------------------------------------------------------------
  // Running a step
  // ---------------------------------------------------------------------------

  /** `claimStart`: when the claiming statement started (traceClock(); 0 with tracing off). */
  private startAll(steps: ClaimedStep[], claimStart = 0, how: 'claim' | 'finish' = 'claim'): void {
    this.events.emit('claimed', steps, claimStart, how);
    for (const step of steps) {
      let settle!: () => void;
      const done = new Promise<void>((r) => (settle = r));
      this.running.set(`${step.id}#${step.attempt}`, { step, startedAt: performance.now(), done, settle });
      void this.execute(step);
    }
  }

  private async execute(step: ClaimedStep): Promise<void> {
    const started = performance.now();
    let outcome: RunOutcome;
    this.events.emit('running', step);
    try {
      outcome = step.batch?.no_op ? { ok: true, result: { no_op: true } } : await this.runner.run(step);
    } catch (err) {
      outcome = runnerFailure(err);
    }
    // Every runtime's error record, made storable here once (NUL and lone surrogates replaced, sizes capped):
    // the logs, the events and the finish all see the same bounded record.
    if (!outcome.ok) outcome = { ok: false, error: storableErrorRecord(outcome.error) };
    const durationMs = performance.now() - started;
    this.events.emit('ran', step, outcome);
    const run = this.running.get(`${step.id}#${step.attempt}`);
    if (run?.cancelled) return this.dropCancelled(run);
    const verdict = judgeRun(step, outcome, durationMs);
    if (verdict.kind === 'refused') return this.batcher.add(verdict.finish);
    const finish = verdict.kind === 'success' ? verdict.finish : await this.failure(step, verdict.error, durationMs);
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ task_id: step.task_id, step: step.name, attempt: step.attempt, ok: finish.item.ok, duration_ms: durationMs }, 'step ran');
    }
    this.batcher.add(finish);
    if (this.runner.isBroken()) this.emit('broken', this.runner.runtime);
  }

  /** A failed run with its step's retry policy applied (read from its template version, cached). */
  private async failure(step: ClaimedStep, error: StepErrorRecord, durationMs: number): Promise<Finish> {
    try {
      return failureFinish(step, error, retryPolicyOf(await this.store.template(step), step), durationMs);
    } catch (err) {
      return policyUnreadFinish(step, err, durationMs);
    }
  }

  /**
   * Steps of a cancelled task that this worker runs: tell the runner to
   * interrupt them (Python and Ruby get the same interrupt as a timeout).
   * Their outcome is dropped when it comes; were this notice lost, the
   * finish would be refused by the fence instead (the step is not running).
   */
  private onCancel(payload: string): void {
    let ids: unknown;
    try {
      ids = (JSON.parse(payload) as { steps?: unknown }).steps;
    } catch {
      return;
    }
    if (!Array.isArray(ids) || this.running.size === 0) return;
    const wanted = new Set(ids);
    for (const run of this.running.values()) {
      if (!wanted.has(run.step.id) || run.cancelled) continue;
      run.cancelled = true;
      const interrupted = this.runner.cancel?.(run.step.id) ?? false;
      this.log.info({ task_id: run.step.task_id, step: run.step.name, attempt: run.step.attempt, interrupted }, 'step cancelled with its task');
    }
  }

  private dropCancelled(run: Running): void {
    const { step } = run;
    this.running.delete(`${step.id}#${step.attempt}`);
    run.settle();
    this.events.emit('dropped', step);
    this.subscription?.poke();
  }

  // ---------------------------------------------------------------------------
  // Finishing (the batcher writes; the worker acts on what was written)
  // ---------------------------------------------------------------------------

  private finishHost(): FinishHost {
    return {
      freeSlots: () => this.concurrency - this.running.size - this.adopting,
      claimTarget: (room: number): ClaimTarget => ({ queues: this.queues, room: this.stopping ? 0 : Math.max(0, room), waiter: this.waiter }),
      committed: (batch, outcomes, startedAt) => {
        this.events.emit('committed', batch, outcomes, startedAt);
        for (const o of outcomes) this.applied(batch, o, startedAt);
      },
      settled: (finish, how) => this.settled(finish, how),
      // The batch's slots are free: let the consumer look for more work.
      batchSettled: () => this.subscription?.poke(),
    };
  }

  /** Act on a committed statement: events, retry timers, then run what it claimed and deliver what it enqueued. */
  private applied(batch: readonly Finish[], o: StatementOutcome, t0: number): void {
    const byId = new Map(batch.map((f) => [f.step.id, f]));
    for (const f of o.finished) {
      const finish = byId.get(f.step_id);
      if (!finish) continue;
      if (finish.refused) this.events.emit('givenBack', finish);
      else this.events.emit('finished', finish, f);
      if (f.run_after) this.retries.wakeAt(f.run_after.getTime());
    }
    this.startAll(o.claimed, t0, 'finish');
    this.announce(o, o.finished);
  }

  /** A run's finish was written (or found written, or refused by the fence): it is no longer in flight. */
  private settled(finish: Finish, how: Settlement): void {
    const { step } = finish;
    const key = `${step.id}#${step.attempt}`;
    const run = this.running.get(key);
    if (run && how.kind !== 'lost') this.stepLatency.observe(performance.now() - run.startedAt);
    if (how.kind === 'recorded') {
      if (finish.refused) this.events.emit('givenBack', finish);
      else this.events.emit('finished', finish, how.earlier);
      this.log.info(
        { task_id: step.task_id, step: step.name, attempt: step.attempt, state: how.earlier.state },
        "the step's outcome was already recorded by this worker (the answer to its first write was lost with the connection)",
      );
    } else if (how.kind === 'lost') {
      this.events.emit('lost', finish);
    }
    run?.settle();
    this.running.delete(key);
  }

  /** After COMMIT: deliver what the statement enqueued and tell whoever listens. */
  private announce(o: StatementOutcome, finished: FinishedStep[]): void {
    const notices: Notice[] = o.taskEnds.map((t) => ({ channel: 'weft_task', payload: JSON.stringify(t) }));
    notices.push(...watchedStepNotices(o, finished));
    this.bus.deliver(o.dispatch, notices);
    for (const t of o.taskEnds) this.events.emit('taskEnded', t);
  }

  /** The public `step` and `task` events, built only while someone listens (a step's result is parsed for it). */
  private publishEvents(): void {
    this.events.on('finished', (finish, f) => {
      if (this.listenerCount('step')) this.emit('step', stepEvent(finish, f));
    });
    this.events.on('dropped', (step) => {
      if (this.listenerCount('step'))
        this.emit('step', { task_id: step.task_id, step_id: step.id, name: step.name, state: 'cancelled', attempts: step.attempt } satisfies StepEvent);
    });
    this.events.on('taskEnded', (t) => this.emit('task', t satisfies TaskEnded));
  }

  // ---------------------------------------------------------------------------
  // Retries, orphans, heartbeats, stop
  // ---------------------------------------------------------------------------

  private dispatchDueRetries(): void {
    this.store.dispatchDueRetries().then(
      (o) => this.announce(o, []),
      (err) => this.log.warn({ err: describeError(err).message }, 'dispatching a due retry failed; the orchestrator sweep will'),
    );
  }

  /**
   * Steps claimed in this worker's name that it is not running (the answer
   * of a claim or a finish that claimed them was lost with its connection):
   * give them back at once, instead of leaving them to a lease that this
   * live worker keeps renewing.
   */
  /** Steps claimed for this worker that it will not run: back to their queues without using an attempt (the orphan check's safety net covers a failure here). */
  private giveBack(steps: ClaimedStep[], reason: string): void {
    this.store
      .release(
        steps.map((s) => ({ id: s.id, attempt: s.attempt })),
        0,
        reason,
      )
      .then(
        (o) => this.announce(o, []),
        (err) => this.log.warn({ err: describeError(err).message, steps: steps.length }, 'giving back steps failed; they run again once their lease expires'),
      );
  }

  private async releaseOrphans(): Promise<void> {
    const mine = await this.store.runningSteps(this.orphanCheckMs);
    const orphans = mine.filter((s) => !this.running.has(`${s.id}#${s.attempt}`));
    if (orphans.length === 0) return;
    const o = await this.store.release(orphans, 0, 'claimed for this worker, which never started it (the answer to the claim was lost)');
    this.log.warn({ steps: o.finished.length }, "gave back steps claimed in this worker's name that it never started");
    this.announce(o, o.finished);
  }

  private info(): Record<string, unknown> {
    const health = this.health();
    return {
      ...(health.status === 'degraded' ? { degraded: health.reason } : {}),
      namespaces: this.served,
      concurrency: this.concurrency,
      in_flight: this.running.size,
      counts: this.counts,
      flushes: this.flushes,
      step_latency_ms: this.stepLatency.snapshot(),
      ...(this.runner.stats ? { bridge: this.runner.stats() } : {}),
      ...this.extraInfo,
    };
  }

  private async beat(): Promise<void> {
    try {
      if (!(await this.store.heartbeat(this.info()))) await this.store.register(this.runner.runtime, this.info());
      if (!this.stopping && performance.now() - this.orphansCheckedAt >= this.orphanCheckMs) {
        this.orphansCheckedAt = performance.now();
        await this.releaseOrphans();
      }
    } catch (err) {
      this.log.warn({ err: describeError(err).message }, 'heartbeat failed');
    }
  }

  /** Stop taking work and wait (up to `drainMs`) for the steps in flight to finish. */
  async stop(drainMs = 30_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.refreshTimer);
    this.retries.stop();
    await this.subscription?.stop();
    this.unlistenCancel?.();
    const drained = Promise.allSettled([...this.running.values()].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      drained.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), drainMs);
      }),
    ]);
    clearTimeout(timer);
    clearInterval(this.heartbeatTimer);
    if (timedOut) {
      this.log.warn({ in_flight: this.running.size }, 'drain timed out; those steps run again once their lease expires');
    } else {
      await this.store.deregister().catch(() => undefined);
    }
    // Outcomes that arrive now are not written (the pool may be closed).
    this.batcher.close();
    this.log.info({ ...this.counts, finish_statements: this.flushes.statements, finished_runs: this.flushes.runs }, 'worker stopped');
  }
}

function stepEvent(finish: Finish, f: FinishedStep): StepEvent {
  const e: StepEvent = { task_id: f.task_id, step_id: f.step_id, name: f.name, state: f.state as StepEvent['state'], attempts: f.attempt };
  if (finish.outcome.ok) e.result = finish.outcome.json !== undefined ? JSON.parse(finish.outcome.json) : finish.outcome.result;
  else e.error = finish.outcome.error;
  return e;
}
