/**
 * Fakes of the worker's seams (WorkerStore, MessageBus, StepRunner) for the
 * worker's unit tests: no database, no broker, no interpreter. Each records
 * what it was asked, and answers the way a test sets it up.
 */
import { vi } from 'vitest';
import { emptyDispatch, type ClaimedStep, type FinishedStep, type StatementOutcome } from '../../src/store/events.js';
import type { ExistingStep, FinishItem } from '../../src/store/finish.js';
import type { PlannedStep } from '../../src/core/plan.js';
import { DEFAULT_RETRY, type RetryPolicy, type TemplateDefinition } from '../../src/core/template/types.js';
import type { WaiterRegistration } from '../../src/store/claim.js';
import { deliveryFor } from '../../src/store/delivery.js';
import type { MessageBus, StepConsumer, Subscription } from '../../src/messaging/types.js';
import type { RunOutcome, StepRunner } from '../../src/worker/runner.js';
import type { ClaimTarget } from '../../src/worker/finish-batcher.js';
import type { WorkerStore } from '../../src/worker/worker-store.js';

let nextId = 0;

/** Wait until `check` passes, looking every millisecond (the fakes answer within a few turns of the event loop). */
export function soon(check: () => void): Promise<void> {
  return vi.waitFor(check, { interval: 1, timeout: 5_000 });
}

/** A claimed step of template `t/linear@1`, step `a` (override what a test needs). */
export function claimedStep(over: Partial<ClaimedStep> = {}): ClaimedStep {
  const id = over.id ?? `00000000-0000-4000-8000-${String(++nextId).padStart(12, '0')}`;
  return {
    id,
    task_id: 'task-1',
    namespace: 't',
    template: 'linear',
    version: '1',
    name: 'a',
    template_step: 'a',
    type: 'standard',
    runtime: 'native',
    handler: 't.a',
    queue: 'step.t.native',
    attempt: 1,
    max_attempts: 3,
    failures: 0,
    timeout_ms: 30_000,
    inputs: {},
    batch: null,
    contextJson: '{}',
    dependencyResultsJson: '{}',
    watched: false,
    ...over,
  };
}

export function statement(parts: Partial<StatementOutcome> = {}): StatementOutcome {
  return { claimed: [], dispatch: emptyDispatch(), finished: [], taskEnds: [], waiting: [], ...parts };
}

/** The template the fake store serves: `a` (standard), `split` (batchable into `work`), `work` (batch_worker, max 2). */
export function template(retry: RetryPolicy = DEFAULT_RETRY): TemplateDefinition {
  const step = (name: string, type: TemplateDefinition['steps'][number]['type'], extra: object = {}) => ({
    name,
    handler: `t.${name}`,
    runtime: 'native' as const,
    type,
    depends_on: [] as string[],
    inputs: {},
    retry,
    timeout_ms: 30_000,
    ...extra,
  });
  return {
    namespace: 't',
    name: 'linear',
    version: '1',
    runtime: 'native',
    steps: [
      step('a', 'standard'),
      step('split', 'batchable', { batch: { worker_template: 'work', batch_size: 10, max_workers: 2 } }),
      step('work', 'batch_worker', { depends_on: ['split'] }),
    ],
  };
}

/** What a finish of `item` records when the fence accepts it (the database's answer, simplified). */
function recordedAs(item: FinishItem, step: ClaimedStep | undefined): FinishedStep {
  const state = item.ok ? 'complete' : item.retryMs === null ? 'error' : 'waiting_retry';
  return {
    step_id: item.id,
    task_id: step?.task_id ?? 'task-1',
    name: step?.name ?? 'a',
    state,
    attempt: item.attempt,
    ...(state === 'waiting_retry' ? { run_after: new Date(Date.now() + 60_000) } : {}),
    watched: false,
  };
}

type Call =
  | { op: 'finish'; items: FinishItem[]; claim: ClaimTarget }
  | { op: 'finishExpansion'; item: FinishItem; planned?: PlannedStep[]; rejected?: FinishItem }
  | { op: 'release'; steps: Array<{ id: string; attempt: number }>; delayMs: number; reason: string }
  | { op: 'register' | 'deregister' | 'heartbeat' | 'dispatchDueRetries' };

/**
 * A WorkerStore in memory. Finishes are accepted unless the step is in
 * `fenced` (taken from this run) or the write is told to fail; claims hand
 * out what `queued` holds.
 */
export class FakeStore implements WorkerStore {
  readonly calls: Call[] = [];
  /** Steps known to the store, by id (claims hand them out; finishes name them in their answers). */
  readonly steps = new Map<string, ClaimedStep>();
  /** Step ids whose finish the fence refuses. */
  readonly fenced = new Set<string>();
  /** Writes (finish, finishExpansion, release) that throw before any succeeds. */
  failWrites = 0;
  /** Runs `recorded` reports as written already. */
  readonly recordedEarlier: FinishedStep[] = [];
  /** Steps claimed by the next finish statement (continuation). */
  claimOnFinish: ClaimedStep[] = [];
  def: TemplateDefinition = template();
  /** Existing steps of the task an expansion plans against. */
  existing: ExistingStep[] = [
    { id: 'a', name: 'a', template_step: 'a', state: 'complete' },
    { id: 's', name: 'split', template_step: 'split', state: 'running' },
  ];
  private cancelListener: ((payload: string) => void) | undefined;

  /** Calls of one kind, in order. */
  of<K extends Call['op']>(op: K): Array<Extract<Call, { op: K }>> {
    return this.calls.filter((c): c is Extract<Call, { op: K }> => c.op === op);
  }

  /** Tell the worker (as weft.cancel_task's NOTIFY would) that these running steps were cancelled. */
  cancel(stepIds: string[]): void {
    this.cancelListener?.(JSON.stringify({ steps: stepIds }));
  }

  async register(): Promise<void> {
    this.calls.push({ op: 'register' });
  }
  async heartbeat(): Promise<boolean> {
    this.calls.push({ op: 'heartbeat' });
    return true;
  }
  async deregister(): Promise<void> {
    this.calls.push({ op: 'deregister' });
  }
  async namespaces(): Promise<string[]> {
    return ['t'];
  }
  async claimQueued(_queues: string[], _room: number, _waiter: WaiterRegistration): Promise<StatementOutcome> {
    return statement();
  }
  async claimIds(stepIds: string[]): Promise<StatementOutcome> {
    return statement({ claimed: stepIds.map((id) => this.steps.get(id)!).filter(Boolean) });
  }
  async dispatchDueRetries(): Promise<StatementOutcome> {
    this.calls.push({ op: 'dispatchDueRetries' });
    return statement();
  }
  async runningSteps(): Promise<Array<{ id: string; attempt: number }>> {
    return [];
  }
  async listenCancel(onPayload: (payload: string) => void): Promise<() => void> {
    this.cancelListener = onPayload;
    return () => (this.cancelListener = undefined);
  }

  async finish(items: FinishItem[], claim: ClaimTarget): Promise<StatementOutcome> {
    this.calls.push({ op: 'finish', items, claim });
    this.maybeFail();
    return this.answer(items);
  }

  async finishExpansion(
    item: Extract<FinishItem, { ok: true }>,
    plan: (existing: ExistingStep[]) => PlannedStep[] | undefined,
    onRejected: (err: unknown) => FinishItem,
  ): Promise<StatementOutcome> {
    this.maybeFail();
    try {
      const planned = plan(this.existing);
      this.calls.push({ op: 'finishExpansion', item, planned });
      return this.answer([item]);
    } catch (err) {
      const rejected = onRejected(err);
      this.calls.push({ op: 'finishExpansion', item, rejected });
      return this.answer([rejected]);
    }
  }

  async release(steps: Array<{ id: string; attempt: number }>, delayMs: number, reason: string): Promise<StatementOutcome> {
    this.calls.push({ op: 'release', steps, delayMs, reason });
    this.maybeFail();
    const finished = steps
      .filter((s) => !this.fenced.has(s.id))
      .map((s) => ({
        ...recordedAs({ id: s.id, attempt: s.attempt, ok: false, error: {}, retryMs: delayMs, durationMs: 0 }, this.steps.get(s.id)),
        state: 'enqueued' as const,
      }));
    return statement({ finished });
  }

  async recorded(runs: Array<{ id: string; attempt: number }>): Promise<FinishedStep[]> {
    return this.recordedEarlier.filter((f) => runs.some((r) => r.id === f.step_id && r.attempt === f.attempt));
  }

  async template(): Promise<TemplateDefinition> {
    return this.def;
  }

  private maybeFail(): void {
    if (this.failWrites > 0) {
      this.failWrites--;
      throw Object.assign(new Error('connection terminated unexpectedly'), { code: '57P01' });
    }
  }

  private answer(items: FinishItem[]): StatementOutcome {
    const finished = items.filter((i) => !this.fenced.has(i.id)).map((i) => recordedAs(i, this.steps.get(i.id)));
    const claimed = this.claimOnFinish;
    this.claimOnFinish = [];
    return statement({ finished, claimed });
  }
}

/** A MessageBus that hands the test the worker's consumer instead of delivering anything. */
export class FakeBus implements MessageBus {
  readonly backend = 'pg' as const;
  readonly delivery = deliveryFor('wake');
  consumer: StepConsumer | undefined;
  pokes = 0;
  delivered = 0;

  deliver(): void {
    this.delivered++;
  }
  async republish(): Promise<void> {}
  async consume(_queues: string[], consumer: StepConsumer): Promise<Subscription> {
    this.consumer = consumer;
    return {
      poke: () => this.pokes++,
      stop: async () => {
        this.consumer = undefined;
      },
    };
  }
  async depth(): Promise<Record<string, number>> {
    return {};
  }
  async health() {
    return { ok: true, backend: 'pg', detail: 'fake' };
  }
  async close(): Promise<void> {}
}

/** A StepRunner whose runs end when the test says: `finish(stepId, outcome)`. */
export class FakeRunner implements StepRunner {
  readonly runtime = 'native';
  readonly started: string[] = [];
  readonly cancelled: string[] = [];
  private readonly open = new Map<string, (o: RunOutcome) => void>();

  handlerKeys(): string[] {
    return ['t.a'];
  }
  run(step: ClaimedStep): Promise<RunOutcome> {
    this.started.push(step.id);
    return new Promise((resolve) => this.open.set(step.id, resolve));
  }
  /** End the run of `stepId` with `outcome`. */
  finish(stepId: string, outcome: RunOutcome): void {
    const resolve = this.open.get(stepId);
    if (!resolve) throw new Error(`no run of step ${stepId} is in flight`);
    this.open.delete(stepId);
    resolve(outcome);
  }
  cancel(stepId: string): boolean {
    this.cancelled.push(stepId);
    return this.open.has(stepId);
  }
  isBroken(): boolean {
    return false;
  }
  async close(): Promise<void> {}
}
