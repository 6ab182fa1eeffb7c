import { EventEmitter } from 'node:events';
import type { Database } from '../store/database.js';
import type { Logger } from '../shared/logger.js';
import type { Delivery, MessageBus, Subscription } from '../messaging/types.js';
import { RESULTS_QUEUE, isStepMessage, stepQueue } from '../messaging/queues.js';
import { claimStep, heartbeat, reportStep, type ClaimedStep, type StepReport } from '../store/steps.js';
import { namespacesForRuntime } from '../store/templates.js';
import { describeError } from '../shared/errors.js';
import type { RunOutcome, StepRunner } from './runner.js';

export interface WorkerOptions {
  db: Database;
  bus: MessageBus;
  log: Logger;
  runner: StepRunner;
  workerId: string;
  /** Namespaces to serve; default: every namespace with a step of this runtime (re-checked periodically). */
  namespaces?: string[];
  /** Steps run at once. */
  concurrency?: number;
  /** How long a claim is good for without a heartbeat. */
  leaseMs?: number;
  /** How often to look for new namespaces when none were given. */
  namespaceRefreshMs?: number;
}

/**
 * A worker process's engine: consumes its queues, claims each step by its
 * state transition (a duplicate delivery is dropped, never run twice),
 * runs the handler through its runner, and writes the result and the
 * transition in one statement, then tells orchestration. Heartbeats extend
 * the leases of running steps; `stop()` drains what is in flight.
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
  private readonly served = new Set<string>();
  private readonly subscriptions: Subscription[] = [];
  private readonly running = new Map<string, Promise<void>>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Counters for /health and tests. */
  readonly counts = { claimed: 0, duplicates: 0, succeeded: 0, failed: 0, lost: 0 };

  constructor(options: WorkerOptions) {
    super();
    this.db = options.db;
    this.bus = options.bus;
    this.runner = options.runner;
    this.id = options.workerId;
    this.log = options.log.child({ component: 'worker', runtime: options.runner.runtime, worker: options.workerId });
    this.concurrency = options.concurrency ?? 8;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.refreshMs = options.namespaceRefreshMs ?? 5_000;
    this.fixedNamespaces = options.namespaces?.length ? options.namespaces : undefined;
  }

  get runtime(): string {
    return this.runner.runtime;
  }

  /** Namespaces being served now. */
  namespaces(): string[] {
    return [...this.served].sort();
  }

  async start(): Promise<void> {
    await this.serve(this.fixedNamespaces ?? (await namespacesForRuntime(this.db, this.runner.runtime)));
    if (!this.fixedNamespaces) {
      this.refreshTimer = setInterval(() => {
        namespacesForRuntime(this.db, this.runner.runtime).then(
          (ns) => this.serve(ns),
          (err) => this.log.warn({ err: describeError(err) }, 'looking for new namespaces failed'),
        );
      }, this.refreshMs);
      this.refreshTimer.unref();
    }
    this.heartbeatTimer = setInterval(() => void this.beat(), Math.max(50, Math.floor(this.leaseMs / 3)));
    this.heartbeatTimer.unref();
    this.log.info({ namespaces: this.namespaces(), concurrency: this.concurrency, handlers: this.runner.handlerKeys().length }, 'worker started');
  }

  /** Start consuming the queues of namespaces not served yet. */
  private async serve(namespaces: string[]): Promise<void> {
    const fresh = namespaces.filter((ns) => !this.served.has(ns));
    if (fresh.length === 0 || this.stopping) return;
    for (const ns of fresh) this.served.add(ns);
    const queues = fresh.map((ns) => stepQueue(ns, this.runner.runtime));
    this.subscriptions.push(await this.bus.consume(queues, (d) => this.onMessage(d), { prefetch: this.concurrency }));
    if (this.subscriptions.length > 1) this.log.info({ namespaces: fresh }, 'serving new namespaces');
  }

  private onMessage(d: Delivery): void {
    if (!isStepMessage(d.body)) {
      d.nack(false, `not a step message: ${JSON.stringify(d.body).slice(0, 200)}`);
      return;
    }
    if (this.stopping || this.runner.isBroken()) {
      d.nack(true, 'worker is stopping');
      return;
    }
    const stepId = d.body.step_id;
    const work = this.execute(stepId, d).finally(() => this.running.delete(stepId));
    this.running.set(stepId, work);
  }

  private async execute(stepId: string, d: Delivery): Promise<void> {
    let step: ClaimedStep | undefined;
    try {
      step = await claimStep(this.db, stepId, this.id, this.leaseMs);
    } catch (err) {
      this.log.warn({ step_id: stepId, err: describeError(err) }, 'claiming a step failed; the message goes back to the queue');
      d.nack(true, (err as Error).message);
      return;
    }
    // Claimed or not, the message has done its job: the step's state now
    // says who runs it.
    d.ack();
    if (!step) {
      this.counts.duplicates++;
      if (this.log.isLevelEnabled('debug')) this.log.debug({ step_id: stepId }, 'step not enqueued any more (duplicate or stale delivery); dropped');
      return;
    }
    this.counts.claimed++;
    const started = performance.now();
    const outcome: RunOutcome = step.batch?.no_op
      ? { ok: true, result: { no_op: true } }
      : await this.runner.run(step).catch((err) => ({ ok: false as const, error: { language: 'weft', class: 'RunnerError', message: describeError(err).message, backtrace: [], permanent: false, kind: 'raised' } }));
    const durationMs = performance.now() - started;
    const report: StepReport = outcome.ok
      ? { ok: true, result: outcome.result, resultJson: outcome.json, error: null, durationMs }
      : { ok: false, result: null, error: outcome.error, durationMs };
    if (outcome.ok) this.counts.succeeded++;
    else this.counts.failed++;
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ task_id: step.task_id, step: step.name, attempt: step.attempt, ok: outcome.ok, duration_ms: durationMs }, 'step ran');
    }
    if (!outcome.ok && outcome.error.kind !== 'timeout' && this.log.isLevelEnabled('debug')) {
      this.log.debug({ task_id: step.task_id, step: step.name, error: outcome.error }, 'handler failed');
    }
    await this.report(step, report);
    if (this.runner.isBroken()) this.emit('broken', this.runner.runtime);
  }

  /**
   * Write the outcome; if the database is unreachable, keep trying (with
   * backoff) so the result is not lost. If this worker lost the step in the
   * meantime (lease expired, another attempt started), the result is dropped.
   */
  private async report(step: ClaimedStep, report: StepReport): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const owned = await reportStep(this.db, { id: step.id, attempt: step.attempt }, this.id, report, this.bus.transactionalOutbox);
        if (!owned) {
          this.counts.lost++;
          this.log.warn({ task_id: step.task_id, step: step.name, attempt: step.attempt }, 'step was taken from this worker (lease expired) before it reported; result discarded');
          return;
        }
        break;
      } catch (err) {
        const delay = Math.min(5_000, 50 * 2 ** Math.min(attempt, 7));
        this.log.warn({ step: step.name, err: describeError(err).message, retry_in_ms: delay }, 'writing a step result failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    if (this.bus.transactionalOutbox) {
      this.bus.published([RESULTS_QUEUE]);
    } else {
      try {
        await this.bus.publish([{ queue: RESULTS_QUEUE, body: { task_id: step.task_id, step_id: step.id } }]);
      } catch (err) {
        // The result is committed; the orchestrator's sweep finds reported steps nobody processed.
        this.log.warn({ step: step.name, err: describeError(err).message }, 'telling orchestration failed; its sweep will pick the result up');
      }
    }
  }

  private async beat(): Promise<void> {
    if (this.running.size === 0) return;
    try {
      await heartbeat(this.db, this.id, [...this.running.keys()], this.leaseMs);
    } catch (err) {
      this.log.warn({ err: describeError(err).message }, 'heartbeat failed');
    }
  }

  /** Steps in flight right now. */
  inFlight(): number {
    return this.running.size;
  }

  /** Stop taking work and wait (up to `drainMs`) for the steps in flight. */
  async stop(drainMs = 30_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.refreshTimer);
    await Promise.all(this.subscriptions.map((s) => s.stop()));
    const drained = Promise.allSettled([...this.running.values()]);
    const timedOut = await Promise.race([drained.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), drainMs).unref())]);
    if (timedOut) this.log.warn({ in_flight: this.running.size }, 'drain timed out; those steps will be retried after their lease expires');
    clearInterval(this.heartbeatTimer);
    this.log.info({ ...this.counts }, 'worker stopped');
  }
}
