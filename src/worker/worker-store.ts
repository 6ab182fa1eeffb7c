import type { Database } from '../store/database.js';
import type { Logger } from '../shared/logger.js';
import type { TemplateDefinition } from '../core/template/types.js';
import type { PlannedStep } from '../core/plan.js';
import { claimsQueued, writesOutbox, type Delivery } from '../store/delivery.js';
import type { ClaimedStep, FinishedStep, StatementOutcome } from '../store/events.js';
import { claimIds, claimQueued, type WaiterRegistration } from '../store/claim.js';
import { finishSteps, finishWithExpansion, recordedOutcomes, type ExistingStep, type FinishItem, type FinishOptions } from '../store/finish.js';
import { dispatchDueRetries } from '../store/dispatch.js';
import { deregisterProcess, heartbeatProcess, registerProcess } from '../store/processes.js';
import { CANCEL_CHANNEL, releaseSteps, runningStepsOf } from '../store/control.js';
import { signalsOf } from '../store/signals.js';
import { namespacesForRuntime, TemplateVersions } from '../store/templates.js';
import type { ClaimTarget, FinishSink } from './finish-batcher.js';

/**
 * Everything a worker reads and writes in the database, as one seam: the
 * worker depends on this interface, so its unit tests run against a fake
 * (test/unit/worker-*.test.ts). Statements that enqueue steps hand them over
 * the bus's way, bound once here: no caller passes it along.
 */
export interface WorkerStore extends FinishSink {
  /** Register (or re-register) the worker process with these facts. */
  register(runtime: string, info: Record<string, unknown>): Promise<void>;
  /** Renew the heartbeat, the lease on all its running steps; false when its row is gone (register again). */
  heartbeat(info: Record<string, unknown>): Promise<boolean>;
  deregister(): Promise<void>;
  /** Namespaces that have a step of this runtime. */
  namespaces(runtime: string): Promise<string[]>;
  /** Claim up to `room` ready steps of `queues` (the PostgreSQL queue); a short claim registers `waiter`. */
  claimQueued(queues: string[], room: number, waiter: WaiterRegistration): Promise<StatementOutcome>;
  /** Claim the steps a broker's messages name (stale ones are skipped). */
  claimIds(stepIds: string[]): Promise<StatementOutcome>;
  /** Enqueue the retries whose backoff has elapsed. */
  dispatchDueRetries(): Promise<StatementOutcome>;
  /** Steps running in this worker's name for longer than `olderThanMs`. */
  runningSteps(olderThanMs: number): Promise<Array<{ id: string; attempt: number }>>;
  /** Hear the ids of cancelled steps that were running (`{ "steps": [...] }`); returns the way to stop listening. */
  listenCancel(onPayload: (payload: string) => void): Promise<() => void>;
}

/** The worker's statements on PostgreSQL, as `workerId`, handing steps over the way `delivery` says. */
export class PgWorkerStore implements WorkerStore {
  private readonly templates: TemplateVersions;

  constructor(
    private readonly db: Database,
    private readonly workerId: string,
    private readonly delivery: Delivery,
    private readonly log: Logger,
  ) {
    this.templates = new TemplateVersions(db);
  }

  register(runtime: string, info: Record<string, unknown>): Promise<void> {
    return registerProcess(this.db, { id: this.workerId, kind: 'worker', runtime, info });
  }

  heartbeat(info: Record<string, unknown>): Promise<boolean> {
    return heartbeatProcess(this.db, this.workerId, info);
  }

  deregister(): Promise<void> {
    return deregisterProcess(this.db, this.workerId);
  }

  namespaces(runtime: string): Promise<string[]> {
    return namespacesForRuntime(this.db, runtime);
  }

  claimQueued(queues: string[], room: number, waiter: WaiterRegistration): Promise<StatementOutcome> {
    return claimQueued(this.db, this.workerId, queues, room, waiter);
  }

  claimIds(stepIds: string[]): Promise<StatementOutcome> {
    return claimIds(this.db, this.workerId, stepIds);
  }

  dispatchDueRetries(): Promise<StatementOutcome> {
    return dispatchDueRetries(this.db, this.workerId, this.delivery);
  }

  runningSteps(olderThanMs: number): Promise<Array<{ id: string; attempt: number }>> {
    return runningStepsOf(this.db, this.workerId, olderThanMs);
  }

  listenCancel(onPayload: (payload: string) => void): Promise<() => void> {
    return signalsOf(this.db, this.log).listen(CANCEL_CHANNEL, onPayload);
  }

  finish(items: FinishItem[], claim: ClaimTarget): Promise<StatementOutcome> {
    return finishSteps(this.db, this.workerId, items, this.finishOptions(claim));
  }

  finishExpansion(
    item: Extract<FinishItem, { ok: true }>,
    plan: (existing: ExistingStep[]) => PlannedStep[] | undefined,
    onRejected: (err: unknown) => FinishItem,
    claim: ClaimTarget,
  ): Promise<StatementOutcome> {
    return finishWithExpansion(this.db, this.workerId, item, plan, onRejected, this.finishOptions(claim));
  }

  release(steps: Array<{ id: string; attempt: number }>, delayMs: number, reason: string): Promise<StatementOutcome> {
    return releaseSteps(this.db, this.workerId, { steps, delayMs, reason }, this.delivery);
  }

  recorded(runs: Array<{ id: string; attempt: number }>): Promise<FinishedStep[]> {
    return recordedOutcomes(this.db, this.workerId, runs);
  }

  template(step: ClaimedStep): Promise<TemplateDefinition> {
    return this.templates.get(step.namespace, step.template, step.version);
  }

  private finishOptions(claim: ClaimTarget): FinishOptions {
    return {
      queues: claim.queues,
      room: Math.max(0, claim.room),
      claimQueued: claimsQueued(this.delivery),
      outbox: writesOutbox(this.delivery),
      waiter: claim.waiter,
    };
  }
}
