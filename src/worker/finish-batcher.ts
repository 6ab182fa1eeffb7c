import { describeError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { backoffMs } from '../shared/retry.js';
import { expandBatch, expandDecision, type PlannedStep } from '../core/plan.js';
import type { TemplateDefinition } from '../core/template/types.js';
import type { WaiterRegistration } from '../store/claim.js';
import type { ClaimedStep, FinishedStep, StatementOutcome } from '../store/events.js';
import type { ExistingStep, FinishItem } from '../store/finish.js';
import { REFUSED_RETRY_MS, rejectedExpansion, type Finish } from './step-outcome.js';

/** What a finish statement may claim for its worker once it has recorded the outcomes. */
export interface ClaimTarget {
  /** The worker's queues: ready children there are claimed for it (continuation). */
  queues: string[];
  /** Steps it can start now (0 once it is stopping). */
  room: number;
  /** The consumer's waiter registration (the PostgreSQL queue), renewed by the finish. */
  waiter?: WaiterRegistration;
}

/**
 * The statements the batcher writes with: the store implements it for the
 * worker (PgWorkerStore), unit tests with a fake. Every call is one statement
 * and one commit; a statement refused by the database's fence simply leaves
 * the run out of `finished`.
 */
export interface FinishSink {
  /** Record these outcomes (weft.finish_steps). A data error fails only the item it came from. */
  finish(items: FinishItem[], claim: ClaimTarget): Promise<StatementOutcome>;
  /**
   * Record one decision or batch outcome with the steps it creates: `plan`
   * runs under the task lock on the task's steps; when it throws, the item
   * `onRejected` returns is recorded instead.
   */
  finishExpansion(
    item: Extract<FinishItem, { ok: true }>,
    plan: (existing: ExistingStep[]) => PlannedStep[] | undefined,
    onRejected: (err: unknown) => FinishItem,
    claim: ClaimTarget,
  ): Promise<StatementOutcome>;
  /** Give steps back without using an attempt (weft.release_steps). */
  release(steps: Array<{ id: string; attempt: number }>, delayMs: number, reason: string): Promise<StatementOutcome>;
  /** Of these runs, those whose outcome this worker recorded itself already (an answer lost with its connection). */
  recorded(runs: Array<{ id: string; attempt: number }>): Promise<FinishedStep[]>;
  /** The template version a step belongs to (cached: a registered version never changes). */
  template(step: ClaimedStep): Promise<TemplateDefinition>;
}

/** How a run's finish ended once its batch was written. */
export type Settlement =
  | { kind: 'accepted' }
  /** Refused by the fence, but this worker had recorded it already (the answer to that write was lost). */
  | { kind: 'recorded'; earlier: FinishedStep }
  /** Refused by the fence: the step is no longer this run's (cancelled, or its lease expired and it was taken). */
  | { kind: 'lost' };

/** What the batcher asks of its worker, and tells it. */
export interface FinishHost {
  /** Slots not taken by running steps (concurrency minus steps in flight). */
  freeSlots(): number;
  /** What a statement with `room` reserved slots may claim (no room once the worker is stopping). */
  claimTarget(room: number): ClaimTarget;
  /** A batch's statements committed, in order: act on them (events, retries, start what they claimed, deliver what they enqueued). */
  committed(batch: readonly Finish[], outcomes: StatementOutcome[], startedAt: number): void;
  /** How one run of the committed batch ended; called for every run of the batch, in order. */
  settled(finish: Finish, how: Settlement): void;
  /** Every run of the batch is settled (its slots are free). */
  batchSettled(): void;
}

export interface FinishBatcherOptions {
  sink: FinishSink;
  host: FinishHost;
  log: Logger;
  /** The runtime's name, for the reason a refused step is given back. */
  runtime: string;
  /** The wait after `failures` failed writes in a row (default: backoff from 100 ms to 5 s, jittered). */
  retryDelayMs?: (failures: number) => number;
  /** A clock for span starts (traceClock; 0 when tracing is off). */
  clock?: () => number;
}

/**
 * Finish statements in flight at once. One gives the best batching (group
 * commit), but leaves PostgreSQL one core for this worker's statements; two
 * let it use both while batches still form behind them.
 */
const MAX_FLUSHES = 2;
/** Failed writes of step outcomes in a row after which the worker's /health says `degraded`. */
const DEGRADED_AFTER_FLUSH_FAILURES = 3;

/**
 * A worker's finishes, written in batches (group commit): the runs that
 * finish while a statement is in flight go together in the next one, so
 * under load the per-step cost divides.
 *
 * - Each statement reserves the slots its batch frees (and any others no
 *   statement in flight has promised) and may fill them with claims, so a
 *   chain runs on without another round trip; {@link reserved} tells the
 *   consumer how many slots are promised that way.
 * - A write that fails (the database is unreachable) keeps its runs, ahead
 *   of the newer ones, and is tried again after a growing backoff; failing
 *   again and again makes {@link health} degraded, naming the reason. The
 *   heartbeat keeps the leases meanwhile, and the fence refuses the runs
 *   whose steps were taken.
 * - A value the database refuses (SQLSTATE class 22) never fails the batch:
 *   the sink fails that one run for good instead.
 * - After {@link close}, nothing more is written (the pool may be closed):
 *   those steps run again once their lease expires.
 */
export class FinishBatcher {
  private readonly sink: FinishSink;
  private readonly host: FinishHost;
  private readonly log: Logger;
  private readonly runtime: string;
  private readonly retryDelayMs: (failures: number) => number;
  private readonly clock: () => number;
  private pending: Finish[] = [];
  private flushing = 0;
  private flushScheduled = false;
  private failures = 0;
  /** The last failure to write outcomes, and since when they have been failing. */
  private failure: { since: Date; message: string } | undefined;
  private closed = false;
  /** Slots that statements in flight may fill with claims. */
  private reservedSlots = 0;
  /** Finish statements and the runs they carried: their ratio is the group commit's batch size. */
  readonly stats = { statements: 0, runs: 0 };

  constructor(o: FinishBatcherOptions) {
    this.sink = o.sink;
    this.host = o.host;
    this.log = o.log;
    this.runtime = o.runtime;
    this.retryDelayMs = o.retryDelayMs ?? ((n) => Math.round(backoffMs(n, 100, 5_000)));
    this.clock = o.clock ?? (() => 0);
  }

  /** Slots promised to the claims of finish statements in flight. */
  get reserved(): number {
    return this.reservedSlots;
  }

  /** Runs waiting to be written. */
  get waiting(): number {
    return this.pending.length;
  }

  /** Write this run's finish with the next batch (at the end of this turn of the event loop). */
  add(finish: Finish): void {
    this.pending.push(finish);
    this.schedule();
  }

  /** Write nothing more: runs that come now, or whose write fails now, are dropped (logged). */
  close(): void {
    this.closed = true;
  }

  /**
   * `healthy`, or `degraded` once writing step outcomes has failed
   * {@link DEGRADED_AFTER_FLUSH_FAILURES} times in a row: the reason names the
   * error, since when, and how many outcomes wait (for /health).
   */
  health(): { status: 'healthy' } | { status: 'degraded'; reason: string } {
    const e = this.failure;
    if (!e || this.failures < DEGRADED_AFTER_FLUSH_FAILURES) return { status: 'healthy' };
    return {
      status: 'degraded',
      reason:
        `writing step outcomes failed ${this.failures} times in a row since ${e.since.toISOString()} (${e.message}); ` +
        `${this.pending.length} outcome(s) wait and are retried with backoff`,
    };
  }

  private schedule(): void {
    if (this.flushScheduled || this.flushing >= MAX_FLUSHES) return;
    this.flushScheduled = true;
    // The end of this turn of the event loop: steps that finish together go together.
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.closed) return this.abandon(this.pending.splice(0));
    if (this.flushing >= MAX_FLUSHES || this.pending.length === 0) return;
    this.flushing++;
    const t0 = this.clock();
    const batch = this.pending;
    this.pending = [];
    // The slots this batch frees, and any others no other statement in flight has promised to fill.
    const reserve = Math.max(0, this.host.freeSlots() + batch.length - this.reservedSlots);
    this.reservedSlots += reserve;
    let settled = false;
    try {
      const outcomes = await this.write(batch, reserve);
      this.stats.statements += outcomes.length;
      this.stats.runs += batch.length;
      this.failures = 0;
      this.failure = undefined;
      this.host.committed(batch, outcomes, t0);
      const recorded = await this.alreadyRecorded(batch, outcomes);
      this.settle(batch, outcomes, recorded);
      settled = true;
    } catch (err) {
      if (this.closed) return this.abandon(batch);
      this.failures++;
      this.failure = { since: this.failure?.since ?? new Date(), message: describeError(err).message };
      const delay = this.retryDelayMs(this.failures);
      this.log.warn({ steps: batch.length, err: this.failure.message, retry_in_ms: delay }, 'writing step outcomes failed; retrying');
      this.pending = [...batch, ...this.pending];
      await new Promise((r) => setTimeout(r, delay));
    } finally {
      this.reservedSlots -= reserve;
      this.flushing--;
    }
    // Told once the reservation is given back too, so the consumer sees every slot the batch freed.
    if (settled) this.host.batchSettled();
    if (this.pending.length) this.schedule();
  }

  /** The batch's statements: refusals given back, plain outcomes together, each expansion under its task lock. */
  private async write(batch: Finish[], reserve: number): Promise<StatementOutcome[]> {
    let room = reserve;
    const outcomes: StatementOutcome[] = [];
    const refused = batch.filter((f) => f.refused);
    const plain = batch.filter((f) => !f.expansion && !f.refused);
    if (refused.length) outcomes.push(await this.giveBack(refused));
    if (plain.length) {
      outcomes.push(
        await this.sink.finish(
          plain.map((f) => f.item),
          this.host.claimTarget(room),
        ),
      );
    }
    for (const f of batch.filter((x) => x.expansion)) {
      room -= outcomes.at(-1)?.claimed.length ?? 0;
      outcomes.push(await this.finishExpansion(f, this.host.claimTarget(room)));
    }
    return outcomes;
  }

  /** Steps the runtime refused: back to the queue a little later, no attempt used. */
  private async giveBack(refused: Finish[]): Promise<StatementOutcome> {
    const first = refused[0]!.outcome;
    const why = first.ok ? '' : `${first.error.kind}: ${first.error.message}`;
    const o = await this.sink.release(
      refused.map((f) => ({ id: f.step.id, attempt: f.step.attempt })),
      REFUSED_RETRY_MS,
      `the ${this.runtime} runtime refused the call (${why})`,
    );
    this.log.warn(
      { steps: refused.length, retry_in_ms: REFUSED_RETRY_MS, why },
      'the runtime refused steps; they go back to the queue without using an attempt',
    );
    return o;
  }

  /** A decision or batch outcome: its steps planned from the template under the task lock; one that cannot apply fails for good. */
  private async finishExpansion(f: Finish, claim: ClaimTarget): Promise<StatementOutcome> {
    const { step } = f;
    const def = await this.sink.template(step);
    const exp = f.expansion!;
    return this.sink.finishExpansion(
      f.item as Extract<FinishItem, { ok: true }>,
      (existing) =>
        exp.kind === 'decision' ? expandDecision(def, existing, step.template_step, exp.steps) : expandBatch(def, existing, step.template_step, exp.cursors),
      (err) => {
        const rejected = rejectedExpansion(f, err);
        f.outcome = rejected.outcome;
        return rejected.item;
      },
      claim,
    );
  }

  /**
   * Runs of the batch the fence refused that this worker had recorded itself
   * already: a finish whose COMMIT succeeded but whose answer was lost with
   * its connection, written again. Not lost, so not counted or logged as such.
   */
  private async alreadyRecorded(batch: Finish[], outcomes: StatementOutcome[]): Promise<Map<string, FinishedStep>> {
    const accepted = acceptedIds(outcomes);
    const refused = batch.filter((f) => !accepted.has(f.step.id));
    if (refused.length === 0) return new Map();
    try {
      const found = await this.sink.recorded(refused.map((f) => ({ id: f.step.id, attempt: f.step.attempt })));
      return new Map(found.map((f) => [f.step_id, f]));
    } catch (err) {
      this.log.warn({ steps: refused.length, err: describeError(err).message }, 'could not check whether refused outcomes were recorded already');
      return new Map();
    }
  }

  private settle(batch: Finish[], outcomes: StatementOutcome[], recorded: Map<string, FinishedStep>): void {
    const accepted = acceptedIds(outcomes);
    for (const f of batch) {
      const earlier = recorded.get(f.step.id);
      this.host.settled(f, accepted.has(f.step.id) ? { kind: 'accepted' } : earlier ? { kind: 'recorded', earlier } : { kind: 'lost' });
    }
  }

  /** Outcomes that came after the worker stopped draining: their steps run again once their lease expires. */
  private abandon(batch: Finish[]): void {
    if (batch.length === 0) return;
    this.log.warn({ steps: batch.length }, 'outcomes arrived after the worker stopped; not written (their steps run again once their lease expires)');
  }
}

function acceptedIds(outcomes: StatementOutcome[]): Set<string> {
  return new Set(outcomes.flatMap((o) => o.finished.map((f) => f.step_id)));
}
