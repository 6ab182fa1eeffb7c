import { EventEmitter } from 'node:events';
import { backoffMs } from '../shared/retry.js';
import type { Database } from '../store/database.js';
import type { Logger } from '../shared/logger.js';
import type { MessageBus, StepConsumer, Subscription } from '../messaging/types.js';
import { stepQueue } from '../messaging/queues.js';
import type { ClaimedStep, FinishedStep, StatementOutcome, TaskEnded } from '../store/events.js';
import { claimIds, claimQueued, type WaiterRegistration } from '../store/claim.js';
import { finishSteps, finishWithExpansion, recordedOutcomes, type FinishItem, type FinishOptions } from '../store/finish.js';
import { dispatchDueRetries, stepNotice, type Notice } from '../store/dispatch.js';
import { deregisterProcess, heartbeatProcess, registerProcess } from '../store/processes.js';
import { CANCEL_CHANNEL, releaseSteps, runningStepsOf } from '../store/control.js';
import { signalsOf } from '../store/signals.js';
import { namespacesForRuntime, TemplateVersions } from '../store/templates.js';
import { describeError } from '../shared/errors.js';
import { BucketHistogram, LATENCY_MS_BUCKETS } from '../shared/histogram.js';
import { unstorableJson } from '../core/json-storable.js';
import { storableErrorRecord } from '../core/error-record.js';
import { jsonDepthProblem, jsonTextDepth, MAX_JSON_DEPTH } from '../core/json-depth.js';
import { interpretResult, OutcomeError } from '../core/outcome.js';
import { expandBatch, expandDecision } from '../core/plan.js';
import { decideAfterFailure } from '../core/retry.js';
import { DEFAULT_RETRY, type StepType } from '../core/template/types.js';
import type { RunOutcome, StepErrorRecord, StepRunner } from './runner.js';
import { traceClock, traceStepDropped, traceStepRan, traceStepRunning, traceStepsClaimed, traceStepsFinished, tracing } from '../telemetry/index.js';

export interface WorkerOptions {
  db: Database;
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
}

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

interface Pending {
  item: FinishItem;
  step: ClaimedStep;
  /** The handler's outcome as it produced it, for events (the error record or the result). */
  outcome: RunOutcome;
  /** Set for decision and batch outcomes: the steps they create are planned under the task lock. */
  expansion?: { kind: 'decision'; steps: string[] } | { kind: 'batches'; cursors: unknown[] };
  /** The runtime refused the call (e.g. its breaker is open): give the step back without using an attempt. */
  refused?: string;
}

/** How long a heartbeat may take to come; the dashboard shows a worker as gone after a few missed ones. */
const HEARTBEAT_MS = 1_000;
/**
 * Finish statements a worker keeps in flight. One gives the best batching
 * (group commit), but leaves PostgreSQL one core for this worker's statements;
 * two let it use both while batches still form behind them.
 */
const MAX_FLUSHES = 2;

/**
 * Answers of a runtime that did not run the handler at all: its breaker is
 * open (after timeouts or a stuck interpreter), its queue is full, it is not
 * loaded. The step goes back to the queue for later, for this or another
 * worker, without using an attempt.
 */
const RUNTIME_REFUSALS: ReadonlySet<string> = new Set(['circuit_open', 'queue_full', 'not_loaded']);
const REFUSED_RETRY_MS = 1_000;
/** Failed writes of step outcomes in a row after which the worker's /health says `degraded`. */
const DEGRADED_AFTER_FLUSH_FAILURES = 3;
/** How often a worker looks for steps claimed in its name that it never started, and how old they must be. */
const ORPHAN_CHECK_MS = 5_000;

/**
 * A worker process's engine. It claims ready steps of its queues, runs their
 * handlers through its runner and finishes them itself (issue 8): one
 * statement records each outcome, moves the task on (children counted down,
 * the task completed or failed, a retry scheduled) and claims the next steps
 * for this worker, so a chain runs without any other process or round trip.
 *
 * - Finishes that arrive while a finish statement is in flight go together
 *   in the next one (group commit), so under load the per-step cost divides.
 * - Every finish carries the attempt number its claim handed out; the
 *   database accepts it only from the attempt that holds the step.
 * - A heartbeat of the process row (weft.processes) every second is the
 *   lease on all its running steps.
 * - `stop()` stops claiming and lets the steps in flight finish.
 */
export class Worker extends EventEmitter {
  private readonly db: Database;
  private readonly bus: MessageBus;
  private readonly log: Logger;
  private readonly runner: StepRunner;
  readonly id: string;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly refreshMs: number;
  private readonly fixedNamespaces: string[] | undefined;
  private readonly templates: TemplateVersions;
  private readonly extraInfo: Record<string, unknown>;
  private served: string[] = [];
  private queues: string[] = [];
  private subscription: Subscription | undefined;
  private waiter: WaiterRegistration | undefined;
  /** By `step id#attempt`: a retry of the same step on this worker is another entry. */
  private readonly running = new Map<string, Running>();
  private pending: Pending[] = [];
  /** Finish statements in flight, and the free slots they may fill with claims. */
  private flushing = 0;
  private reserved = 0;
  private flushScheduled = false;
  private flushFailures = 0;
  /** The last failure to write outcomes, and since when they have been failing (for /health). */
  private flushError: { since: Date; message: string } | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAt = Infinity;
  private stopping = false;
  /** stop() has returned: outcomes that arrive now are not written (the pool may be closed). */
  private stopped = false;
  private unlistenCancel: (() => void) | undefined;
  private watchingBroken = false;
  private orphansCheckedAt = 0;
  private readonly orphanCheckMs: number;
  /** Counters for /health, /metrics and weft.processes.info. */
  readonly counts = { claimed: 0, succeeded: 0, failed: 0, retried: 0, lost: 0, cancelled: 0, given_back: 0 };
  /** Finish statements and the runs they carried: their ratio is the group commit's batch size. */
  readonly flushes = { statements: 0, runs: 0 };
  /** From starting a step to its outcome committed (ms); published with the heartbeat for the orchestrators' /metrics. */
  readonly stepLatency = new BucketHistogram(LATENCY_MS_BUCKETS);

  constructor(options: WorkerOptions) {
    super();
    this.db = options.db;
    this.bus = options.bus;
    this.runner = options.runner;
    this.id = options.workerId;
    this.log = options.log.child({ component: 'worker', runtime: options.runner.runtime, worker: options.workerId });
    this.concurrency = Math.max(1, Math.min(options.concurrency ?? 32, options.runner.capacity ?? Infinity));
    this.leaseMs = options.leaseMs ?? 30_000;
    this.refreshMs = options.namespaceRefreshMs ?? 5_000;
    this.fixedNamespaces = options.namespaces?.length ? options.namespaces : undefined;
    this.templates = new TemplateVersions(this.db);
    this.extraInfo = options.info ?? {};
    this.orphanCheckMs = options.orphanCheckMs ?? ORPHAN_CHECK_MS;
  }

  get runtime(): string {
    return this.runner.runtime;
  }

  /** Namespaces being served now. */
  namespaces(): string[] {
    return [...this.served];
  }

  /** Steps in flight right now. */
  inFlight(): number {
    return this.running.size;
  }

  /** Register, listen and start consuming; if that fails (a dependency is down) it may be called again. */
  async start(): Promise<void> {
    await registerProcess(this.db, { id: this.id, kind: 'worker', runtime: this.runner.runtime, info: this.info() });
    // A runtime can break between steps (too many handlers stuck at once), not only in one.
    if (!this.watchingBroken) {
      this.watchingBroken = true;
      this.runner.onBroken?.((reason) => this.emit('broken', this.runner.runtime, reason));
    }
    this.unlistenCancel ??= await signalsOf(this.db, this.log).listen(CANCEL_CHANNEL, (payload) => this.onCancel(payload));
    this.heartbeatTimer ??= setInterval(() => void this.beat(), Math.min(HEARTBEAT_MS, Math.max(50, Math.floor(this.leaseMs / 3))));
    this.heartbeatTimer.unref();
    await this.serve(this.fixedNamespaces ?? (await namespacesForRuntime(this.db, this.runner.runtime)));
    if (!this.fixedNamespaces) {
      this.refreshTimer = setInterval(() => {
        namespacesForRuntime(this.db, this.runner.runtime).then(
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

  private consumer(): StepConsumer {
    return {
      room: () => (this.stopping ? 0 : this.concurrency - this.running.size - this.reserved),
      claimQueued: async (room, waiter) => {
        const t0 = traceClock();
        const outcome = await claimQueued(this.db, this.id, this.queues, room, waiter);
        this.startAll(outcome.claimed, t0);
        this.announce(outcome, []);
        return outcome.claimed.length;
      },
      claimDelivered: async (stepIds) => {
        const t0 = traceClock();
        const outcome = await claimIds(this.db, this.id, stepIds);
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
    if (tracing.enabled) traceStepsClaimed(steps, claimStart, how);
    for (const step of steps) {
      let settle!: () => void;
      const done = new Promise<void>((r) => (settle = r));
      this.running.set(`${step.id}#${step.attempt}`, { step, startedAt: performance.now(), done, settle });
      this.counts.claimed++;
      void this.execute(step);
    }
  }

  private async execute(step: ClaimedStep): Promise<void> {
    const started = performance.now();
    let outcome: RunOutcome;
    if (tracing.enabled) traceStepRunning(step);
    try {
      outcome = step.batch?.no_op ? { ok: true, result: { no_op: true } } : await this.runner.run(step);
    } catch (err) {
      outcome = {
        ok: false,
        error: { language: 'weft', class: 'RunnerError', message: describeError(err).message, backtrace: [], permanent: false, kind: 'raised' },
      };
    }
    // Every runtime's error record, made storable here once (NUL and lone surrogates replaced, sizes capped):
    // the logs, the events and the finish all see the same bounded record.
    if (!outcome.ok) outcome = { ok: false, error: storableErrorRecord(outcome.error) };
    const durationMs = performance.now() - started;
    if (tracing.enabled) traceStepRan(step, outcome);
    const run = this.running.get(`${step.id}#${step.attempt}`);
    if (run?.cancelled) return this.dropCancelled(run);
    let pending: Pending;
    if (!outcome.ok && RUNTIME_REFUSALS.has(outcome.error.kind)) {
      const error = outcome.error;
      pending = { step, outcome, refused: error.kind, item: { id: step.id, attempt: step.attempt, ok: false, error, retryMs: REFUSED_RETRY_MS, durationMs } };
      this.pending.push(pending);
      this.scheduleFlush();
      return;
    }
    try {
      pending = await this.toFinish(step, outcome, durationMs);
    } catch (err) {
      // Reading the template failed (the database is down): keep the run as a retryable failure.
      const error = { language: 'weft', class: 'WorkerError', message: describeError(err).message, backtrace: [], permanent: false, kind: 'raised' };
      pending = { step, outcome: { ok: false, error }, item: { id: step.id, attempt: step.attempt, ok: false, error, retryMs: 1_000, durationMs } };
    }
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ task_id: step.task_id, step: step.name, attempt: step.attempt, ok: pending.item.ok, duration_ms: durationMs }, 'step ran');
    }
    this.pending.push(pending);
    this.scheduleFlush();
    if (this.runner.isBroken()) this.emit('broken', this.runner.runtime);
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
    if (tracing.enabled) traceStepDropped(step);
    this.counts.cancelled++;
    this.running.delete(`${step.id}#${step.attempt}`);
    run.settle();
    if (this.listenerCount('step'))
      this.emit('step', { task_id: step.task_id, step_id: step.id, name: step.name, state: 'cancelled', attempts: step.attempt } satisfies StepEvent);
    this.subscription?.poke();
  }

  /** What to report: the result (checked and interpreted for the step's type), or the failure with the retry policy applied. */
  private async toFinish(step: ClaimedStep, outcome: RunOutcome, durationMs: number): Promise<Pending> {
    if (outcome.ok) {
      const json = outcome.json ?? JSON.stringify(outcome.result === undefined ? null : outcome.result);
      const tooDeep = jsonTextDepth(json) > MAX_JSON_DEPTH ? tooDeepResult(step.handler, json) : undefined;
      if (tooDeep) return this.toFinish(step, { ok: false, error: tooDeep }, durationMs);
      const problem = unstorableJson(json);
      const rejected = problem
        ? new OutcomeError(
            `the handler returned a value that cannot be stored: the string at ${problem.path} ${problem.problem}; remove it or encode it (e.g. base64)`,
          )
        : undefined;
      let expansion: Pending['expansion'];
      let invalid: unknown = rejected;
      if (!rejected && (step.type !== 'standard' || json.includes('"$weft"'))) {
        try {
          const read = interpretResult(step.type as StepType, outcome.json !== undefined ? JSON.parse(json) : outcome.result);
          if (read.kind === 'decision') expansion = { kind: 'decision', steps: read.steps };
          if (read.kind === 'batches') expansion = { kind: 'batches', cursors: read.cursors };
        } catch (err) {
          invalid = err;
        }
      }
      if (invalid === undefined) {
        return { step, outcome, expansion, item: { id: step.id, attempt: step.attempt, ok: true, resultJson: json, durationMs } };
      }
      const e = describeError(invalid);
      const error: StepErrorRecord = { language: 'weft', class: e.class, message: e.message, backtrace: [], permanent: true, kind: 'invalid_outcome' };
      return this.toFinish(step, { ok: false, error }, durationMs);
    }
    const error = outcome.error;
    const def = await this.templates.get(step.namespace, step.template, step.version);
    const policy = def.steps.find((d) => d.name === step.template_step)?.retry ?? DEFAULT_RETRY;
    const decision = decideAfterFailure(policy, step.failures + 1, error.permanent === true);
    if (decision.action === 'retry') {
      return { step, outcome, item: { id: step.id, attempt: step.attempt, ok: false, error, retryMs: decision.delayMs, durationMs } };
    }
    const reason = decision.reason === 'permanent' ? 'permanent error' : `attempts exhausted (${step.failures + 1} of ${policy.max_attempts})`;
    return { step, outcome, item: { id: step.id, attempt: step.attempt, ok: false, error, retryMs: null, reason, durationMs } };
  }

  // ---------------------------------------------------------------------------
  // Finishing: one statement per batch, group commit
  // ---------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing >= MAX_FLUSHES) return;
    this.flushScheduled = true;
    // The end of this turn of the event loop: steps that finish together go together.
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  /** `room`: the slots this statement may fill with claims (reserved for it). */
  private finishOptions(room: number): FinishOptions {
    return {
      queues: this.queues,
      room: this.stopping ? 0 : Math.max(0, room),
      claimQueued: this.bus.dispatchMode === 'wake',
      outbox: this.bus.dispatchMode === 'outbox',
      waiter: this.waiter,
    };
  }

  private async flush(): Promise<void> {
    if (this.stopped) return this.abandon(this.pending.splice(0));
    if (this.flushing >= MAX_FLUSHES || this.pending.length === 0) return;
    this.flushing++;
    const t0 = traceClock();
    const batch = this.pending;
    this.pending = [];
    // The slots this batch frees, and any others no other statement in flight has promised to fill.
    const reserve = Math.max(0, this.concurrency - this.running.size + batch.length - this.reserved);
    this.reserved += reserve;
    try {
      let room = reserve;
      const plain = batch.filter((p) => !p.expansion && !p.refused);
      const outcomes: StatementOutcome[] = [];
      const refused = batch.filter((p) => p.refused);
      if (refused.length) outcomes.push(await this.giveBack(refused));
      if (plain.length)
        outcomes.push(
          await finishSteps(
            this.db,
            this.id,
            plain.map((p) => p.item),
            this.finishOptions(room),
          ),
        );
      for (const p of batch.filter((x) => x.expansion)) {
        room -= outcomes.at(-1)?.claimed.length ?? 0;
        outcomes.push(await this.finishExpansion(p, this.finishOptions(room)));
      }
      this.flushes.statements += outcomes.length;
      this.flushes.runs += batch.length;
      this.flushFailures = 0;
      this.flushError = undefined;
      if (tracing.enabled)
        traceStepsFinished(
          batch.map((p) => p.step),
          outcomes,
          t0,
        );
      for (const o of outcomes) this.applied(batch, o, t0);
      const recorded = await this.alreadyRecorded(batch, outcomes);
      this.release(batch, outcomes, recorded);
    } catch (err) {
      if (this.stopped) return this.abandon(batch);
      // The database is unreachable (or the statement failed for another
      // reason): keep the results and try again; the heartbeat keeps the
      // leases, and the database's fence refuses them if the steps were taken.
      // (A value the database refuses never gets here: finishSteps fails
      // that one step for good instead.) Failing again and again makes the
      // worker's /health degraded, naming the reason.
      this.flushFailures++;
      this.flushError = { since: this.flushError?.since ?? new Date(), message: describeError(err).message };
      const delay = Math.round(backoffMs(this.flushFailures, 100, 5_000));
      this.log.warn({ steps: batch.length, err: this.flushError.message, retry_in_ms: delay }, 'writing step outcomes failed; retrying');
      this.pending = [...batch, ...this.pending];
      await new Promise((r) => setTimeout(r, delay));
    } finally {
      this.reserved -= reserve;
      this.flushing--;
    }
    if (this.pending.length) this.scheduleFlush();
  }

  /**
   * `healthy`, or `degraded` once writing step outcomes has failed
   * {@link DEGRADED_AFTER_FLUSH_FAILURES} times in a row: the reason names the
   * error, since when, and how many outcomes wait (for /health).
   */
  health(): { status: 'healthy' } | { status: 'degraded'; reason: string } {
    const e = this.flushError;
    if (!e || this.flushFailures < DEGRADED_AFTER_FLUSH_FAILURES) return { status: 'healthy' };
    return {
      status: 'degraded',
      reason:
        `writing step outcomes failed ${this.flushFailures} times in a row since ${e.since.toISOString()} (${e.message}); ` +
        `${this.pending.length} outcome(s) wait and are retried with backoff`,
    };
  }

  /**
   * Runs of the batch the fence refused that this worker had recorded itself
   * already: a finish whose COMMIT succeeded but whose answer was lost with
   * its connection, written again. Not lost, so not counted or logged as such.
   */
  private async alreadyRecorded(batch: Pending[], outcomes: StatementOutcome[]): Promise<Map<string, FinishedStep>> {
    const accepted = new Set(outcomes.flatMap((o) => o.finished.map((f) => f.step_id)));
    const refused = batch.filter((p) => !accepted.has(p.step.id));
    if (refused.length === 0) return new Map();
    try {
      const found = await recordedOutcomes(
        this.db,
        this.id,
        refused.map((p) => ({ id: p.step.id, attempt: p.step.attempt })),
      );
      return new Map(found.map((f) => [f.step_id, f]));
    } catch (err) {
      this.log.warn({ steps: refused.length, err: describeError(err).message }, 'could not check whether refused outcomes were recorded already');
      return new Map();
    }
  }

  /** Outcomes that came after stop() gave up draining: their steps run again once their lease expires. */
  private abandon(batch: Pending[]): void {
    if (batch.length === 0) return;
    this.log.warn({ steps: batch.length }, 'outcomes arrived after the worker stopped; not written (their steps run again once their lease expires)');
  }

  /** Steps the runtime refused: back to the queue a little later, no attempt used (weft.release_steps). */
  private async giveBack(refused: Pending[]): Promise<StatementOutcome> {
    const first = refused[0]!.outcome;
    const why = first.ok ? '' : `${first.error.kind}: ${first.error.message}`;
    const o = await releaseSteps(
      this.db,
      this.id,
      {
        steps: refused.map((p) => ({ id: p.step.id, attempt: p.step.attempt })),
        delayMs: REFUSED_RETRY_MS,
        reason: `the ${this.runner.runtime} runtime refused the call (${why})`,
      },
      this.bus.dispatchMode,
    );
    this.log.warn(
      { steps: refused.length, retry_in_ms: REFUSED_RETRY_MS, why },
      'the runtime refused steps; they go back to the queue without using an attempt',
    );
    return o;
  }

  /**
   * Steps claimed in this worker's name that it is not running (the answer
   * of a claim or a finish that claimed them was lost with its connection):
   * give them back at once, instead of leaving them to a lease that this
   * live worker keeps renewing.
   */
  private async releaseOrphans(): Promise<void> {
    const mine = await runningStepsOf(this.db, this.id, this.orphanCheckMs);
    const orphans = mine.filter((s) => !this.running.has(`${s.id}#${s.attempt}`));
    if (orphans.length === 0) return;
    const o = await releaseSteps(
      this.db,
      this.id,
      { steps: orphans, delayMs: 0, reason: 'claimed for this worker, which never started it (the answer to the claim was lost)' },
      this.bus.dispatchMode,
    );
    this.log.warn({ steps: o.finished.length }, "gave back steps claimed in this worker's name that it never started");
    this.announce(o, o.finished);
  }

  private async finishExpansion(p: Pending, options: FinishOptions): Promise<StatementOutcome> {
    const step = p.step;
    const def = await this.templates.get(step.namespace, step.template, step.version);
    const exp = p.expansion!;
    return finishWithExpansion(
      this.db,
      this.id,
      p.item as Extract<FinishItem, { ok: true }>,
      (existing) =>
        exp.kind === 'decision' ? expandDecision(def, existing, step.template_step, exp.steps) : expandBatch(def, existing, step.template_step, exp.cursors),
      (err) => {
        const e = describeError(err);
        const error: StepErrorRecord = { language: 'weft', class: e.class, message: e.message, backtrace: [], permanent: true, kind: 'invalid_outcome' };
        p.outcome = { ok: false, error };
        return { id: step.id, attempt: step.attempt, ok: false, error, retryMs: null, reason: 'permanent error', durationMs: p.item.durationMs };
      },
      options,
    );
  }

  /** Act on a committed finish: counters, events, logs, retry timers, then run what it claimed and deliver what it enqueued. */
  private applied(batch: Pending[], o: StatementOutcome, t0 = 0): void {
    const byId = new Map(batch.map((p) => [p.step.id, p]));
    for (const f of o.finished) {
      const p = byId.get(f.step_id);
      if (!p) continue;
      if (p.refused) {
        this.counts.given_back++;
        if (f.run_after) this.wakeRetriesAt(f.run_after.getTime());
        continue;
      }
      this.countAndLog(p, f);
      if (this.listenerCount('step')) this.emit('step', stepEvent(p, f));
      if (f.run_after) this.wakeRetriesAt(f.run_after.getTime());
    }
    this.startAll(o.claimed, t0, 'finish');
    this.announce(o, o.finished);
  }

  private countAndLog(p: Pending, f: FinishedStep): void {
    const step = p.step;
    if (f.state === 'complete') {
      this.counts.succeeded++;
      return;
    }
    this.counts.failed++;
    const error = p.outcome.ok ? undefined : p.outcome.error;
    if (f.state === 'waiting_retry') {
      this.counts.retried++;
      this.log.warn({ task_id: step.task_id, step: step.name, attempt: step.attempt, retry_at: f.run_after, error: error?.message }, 'step failed; retrying');
    } else if (f.state === 'error') {
      const item = p.item as Extract<FinishItem, { ok: false }>;
      this.log.error(
        { task_id: step.task_id, step: step.name, attempt: step.attempt, reason: item.reason, error, duration_ms: Math.round(item.durationMs) },
        'step failed; task failed',
      );
    }
  }

  /**
   * Drop the finished runs from `running`: accepted, recorded by an earlier
   * write of this worker whose answer was lost (`recorded`), or refused by
   * the fence (the step was taken from this worker).
   */
  private release(batch: Pending[], outcomes: StatementOutcome[], recorded: Map<string, FinishedStep>): void {
    const accepted = new Set(outcomes.flatMap((o) => o.finished.map((f) => f.step_id)));
    const now = performance.now();
    for (const p of batch) {
      const key = `${p.step.id}#${p.step.attempt}`;
      const run = this.running.get(key);
      const earlier = recorded.get(p.step.id);
      if (run && (accepted.has(p.step.id) || earlier)) this.stepLatency.observe(now - run.startedAt);
      if (earlier) {
        if (p.refused) this.counts.given_back++;
        else {
          this.countAndLog(p, earlier);
          if (this.listenerCount('step')) this.emit('step', stepEvent(p, earlier));
        }
        this.log.info(
          { task_id: p.step.task_id, step: p.step.name, attempt: p.step.attempt, state: earlier.state },
          "the step's outcome was already recorded by this worker (the answer to its first write was lost with the connection)",
        );
      } else if (!accepted.has(p.step.id)) {
        this.counts.lost++;
        this.log.warn(
          { task_id: p.step.task_id, step: p.step.name, attempt: p.step.attempt },
          "the step was no longer this run's when it finished (cancelled, or its lease expired and it was taken); result discarded",
        );
      }
      run?.settle();
      this.running.delete(key);
    }
    this.subscription?.poke();
  }

  /** After COMMIT: deliver what the statement enqueued and tell whoever listens. */
  private announce(o: StatementOutcome, finished: FinishedStep[]): void {
    const notices: Notice[] = o.taskEnds.map((t) => ({ channel: 'weft_task', payload: JSON.stringify(t) }));
    for (const f of finished) if (f.watched) notices.push(stepNotice(f.task_id, f.step_id, f.name, f.state, f.attempt));
    for (const c of o.claimed) if (c.watched) notices.push(stepNotice(c.task_id, c.id, c.name, 'running', c.attempt));
    for (const s of o.dispatch.steps) if (s.watched) notices.push(stepNotice(s.task_id, s.step_id, s.name ?? '', 'enqueued', 0));
    this.bus.deliver(o.dispatch, notices);
    for (const t of o.taskEnds) this.emit('task', t satisfies TaskEnded);
  }

  // ---------------------------------------------------------------------------
  // Retries, heartbeats, stop
  // ---------------------------------------------------------------------------

  /** Dispatch a retry this worker scheduled when it is due (the orchestrator's sweep is the safety net). */
  private wakeRetriesAt(at: number): void {
    if (this.stopping || at >= this.retryAt) return;
    clearTimeout(this.retryTimer);
    this.retryAt = at;
    this.retryTimer = setTimeout(
      () => {
        this.retryAt = Infinity;
        dispatchDueRetries(this.db, this.id, this.bus.dispatchMode).then(
          (o) => this.announce(o, []),
          (err) => this.log.warn({ err: describeError(err).message }, 'dispatching a due retry failed; the orchestrator sweep will'),
        );
      },
      Math.max(0, at - Date.now()) + 2,
    );
    this.retryTimer.unref();
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
      if (!(await heartbeatProcess(this.db, this.id, this.info()))) {
        await registerProcess(this.db, { id: this.id, kind: 'worker', runtime: this.runner.runtime, info: this.info() });
      }
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
    clearTimeout(this.retryTimer);
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
      await deregisterProcess(this.db, this.id).catch(() => undefined);
    }
    this.stopped = true;
    this.log.info({ ...this.counts, finish_statements: this.flushes.statements, finished_runs: this.flushes.runs }, 'worker stopped');
  }
}

function stepEvent(p: Pending, f: FinishedStep): StepEvent {
  const e: StepEvent = { task_id: f.task_id, step_id: f.step_id, name: f.name, state: f.state as StepEvent['state'], attempts: f.attempt };
  if (p.outcome.ok) e.result = p.outcome.json !== undefined ? JSON.parse(p.outcome.json) : p.outcome.result;
  else e.error = p.outcome.error;
  return e;
}

/**
 * A result nested deeper than weft's one limit (MAX_JSON_DEPTH), as the
 * permanent error every runtime reports: no reader downstream (Ruby's parser
 * stops at 100 levels) could be trusted with it. The text is parsed only once
 * its cheap scan found it too deep.
 */
function tooDeepResult(handler: string, json: string): StepErrorRecord | undefined {
  let problem;
  try {
    problem = jsonDepthProblem(JSON.parse(json));
  } catch {
    return undefined; // not JSON at all: reported elsewhere
  }
  if (!problem) return undefined;
  return {
    language: 'weft',
    class: 'InvalidReturn',
    message: `handler "${handler}" returned a result that nests deeper than ${problem.max} levels at ${problem.path}; flatten it (weft keeps every JSON value within ${problem.max} levels)`,
    backtrace: [],
    permanent: true,
    kind: 'invalid_return',
  };
}
