import { afterEach, describe, expect, it } from 'vitest';
import { Worker, type StepEvent } from '../../src/worker/worker.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { ClaimedStep } from '../../src/store/events.js';
import { FakeBus, FakeRunner, FakeStore, claimedStep, soon } from './worker-fakes.js';

/** A worker on fakes of its three seams, started, serving namespace `t`. */
async function startWorker(o: { concurrency?: number } = {}) {
  const store = new FakeStore();
  const bus = new FakeBus();
  const runner = new FakeRunner();
  const worker = new Worker({ store, bus, runner, log: silentLogger(), workerId: 'w-unit', namespaces: ['t'], flushRetryDelayMs: () => 0, ...o });
  const events: StepEvent[] = [];
  worker.on('step', (e: StepEvent) => events.push(e));
  await worker.start();
  started.push(worker);
  /** Deliver these steps to the worker, as a broker message would; resolves once they run. */
  const deliver = async (...steps: ClaimedStep[]) => {
    for (const s of steps) store.steps.set(s.id, s);
    await bus.consumer!.claimDelivered(steps.map((s) => s.id));
  };
  return { store, bus, runner, worker, events, deliver };
}

const started: Worker[] = [];
afterEach(async () => {
  for (const w of started.splice(0)) await w.stop(100);
});

describe('Worker on fakes', () => {
  it('runs a delivered step and writes its result, then frees the slot', async () => {
    const { store, runner, worker, events, deliver } = await startWorker();
    const step = claimedStep();
    await deliver(step);
    expect(runner.started).toEqual([step.id]);
    expect(worker.inFlight()).toBe(1);
    runner.finish(step.id, { ok: true, result: { n: 1 } });
    await soon(() => expect(worker.inFlight()).toBe(0));
    expect(store.of('finish')).toHaveLength(1);
    expect(store.of('finish')[0]!.items).toMatchObject([{ id: step.id, attempt: 1, ok: true, resultJson: '{"n":1}' }]);
    expect(events).toMatchObject([{ step_id: step.id, state: 'complete', result: { n: 1 } }]);
    expect(worker.counts).toMatchObject({ claimed: 1, succeeded: 1, failed: 0, lost: 0 });
  });

  it('gives a refused step back without using an attempt', async () => {
    const { store, runner, worker, events, deliver } = await startWorker();
    const step = claimedStep();
    await deliver(step);
    runner.finish(step.id, {
      ok: false,
      error: { language: 'weft', class: 'CircuitOpen', message: 'breaker open', backtrace: [], permanent: false, kind: 'circuit_open' },
    });
    await soon(() => expect(worker.inFlight()).toBe(0));
    expect(store.of('finish')).toEqual([]);
    expect(store.of('release')).toEqual([
      { op: 'release', steps: [{ id: step.id, attempt: 1 }], delayMs: 1_000, reason: 'the native runtime refused the call (circuit_open: breaker open)' },
    ]);
    expect(worker.counts).toMatchObject({ given_back: 1, failed: 0, retried: 0 });
    expect(events).toEqual([]);
  });

  it('drops the outcome of a step whose task was cancelled while it ran', async () => {
    const { store, runner, worker, events, deliver } = await startWorker();
    const step = claimedStep();
    await deliver(step);
    store.cancel([step.id]);
    expect(runner.cancelled).toEqual([step.id]);
    runner.finish(step.id, { ok: true, result: 'late' });
    await soon(() => expect(worker.inFlight()).toBe(0));
    expect(store.of('finish')).toEqual([]);
    expect(worker.counts).toMatchObject({ cancelled: 1, succeeded: 0 });
    expect(events).toEqual([{ task_id: step.task_id, step_id: step.id, name: step.name, state: 'cancelled', attempts: 1 }]);
  });

  it('counts a finish the fence refused as a loss, not a success', async () => {
    const { store, runner, worker, events, deliver } = await startWorker();
    const step = claimedStep();
    await deliver(step);
    store.fenced.add(step.id);
    runner.finish(step.id, { ok: true, result: 1 });
    await soon(() => expect(worker.inFlight()).toBe(0));
    expect(store.of('finish')).toHaveLength(1);
    expect(worker.counts).toMatchObject({ lost: 1, succeeded: 0 });
    expect(events).toEqual([]);
  });

  it('reports a refused finish that this worker had recorded already as done, not lost', async () => {
    const { store, runner, worker, events, deliver } = await startWorker();
    const step = claimedStep();
    await deliver(step);
    store.fenced.add(step.id);
    store.recordedEarlier.push({ step_id: step.id, task_id: step.task_id, name: step.name, state: 'complete', attempt: 1, watched: false });
    runner.finish(step.id, { ok: true, result: 2 });
    await soon(() => expect(worker.inFlight()).toBe(0));
    expect(worker.counts).toMatchObject({ lost: 0, succeeded: 1 });
    expect(events).toMatchObject([{ state: 'complete', result: 2 }]);
  });

  it('fails a batch expansion the template cannot apply, for good, naming the problem', async () => {
    const { store, runner, worker, events, deliver } = await startWorker();
    const step = claimedStep({ type: 'batchable', name: 'split', template_step: 'split' });
    await deliver(step);
    // The template allows 2 workers (batch.max_workers); 3 cursors cannot be applied.
    runner.finish(step.id, { ok: true, result: { $weft: 'batches', cursors: [1, 2, 3] } });
    await soon(() => expect(worker.inFlight()).toBe(0));
    const [call] = store.of('finishExpansion');
    expect(call!.rejected).toMatchObject({ id: step.id, ok: false, retryMs: null, reason: 'permanent error', error: { class: 'BatchError', permanent: true } });
    expect(worker.counts).toMatchObject({ failed: 1, succeeded: 0 });
    expect(events).toMatchObject([{ state: 'error', error: { class: 'BatchError', kind: 'invalid_outcome' } }]);
  });

  it('plans the steps of a batch expansion that fits', async () => {
    const { store, runner, worker, deliver } = await startWorker();
    const step = claimedStep({ type: 'batchable', name: 'split', template_step: 'split' });
    await deliver(step);
    runner.finish(step.id, { ok: true, result: { $weft: 'batches', cursors: ['x', 'y'] } });
    await soon(() => expect(worker.inFlight()).toBe(0));
    expect(store.of('finishExpansion')[0]!.planned!.map((p) => p.name)).toEqual(['work_001', 'work_002']);
    expect(worker.counts.succeeded).toBe(1);
  });

  it("applies the step's retry policy to a failure and wakes for the retry", async () => {
    const { store, runner, worker, events, deliver } = await startWorker();
    const step = claimedStep();
    await deliver(step);
    runner.finish(step.id, { ok: false, error: { language: 'python', class: 'KeyError', message: 'x', backtrace: [], permanent: false, kind: 'raised' } });
    await soon(() => expect(worker.inFlight()).toBe(0));
    expect(store.of('finish')[0]!.items[0]).toMatchObject({ ok: false, retryMs: expect.any(Number) });
    expect(worker.counts).toMatchObject({ failed: 1, retried: 1 });
    expect(events).toMatchObject([{ state: 'waiting_retry', error: { class: 'KeyError' } }]);
  });

  it('runs what a finish claimed for it at once (continuation), within its free slots', async () => {
    const { store, runner, worker, deliver } = await startWorker({ concurrency: 4 });
    const first = claimedStep();
    const next = claimedStep({ name: 'b' });
    await deliver(first);
    store.claimOnFinish = [next];
    runner.finish(first.id, { ok: true, result: 1 });
    await soon(() => expect(runner.started).toEqual([first.id, next.id]));
    // The finish could fill the slot it freed and the three others.
    expect(store.of('finish')[0]!.claim.room).toBe(4);
    runner.finish(next.id, { ok: true, result: 2 });
    await soon(() => expect(worker.inFlight()).toBe(0));
  });

  it('drains on stop: a step in flight finishes and is written before stop() returns', async () => {
    const { store, runner, worker, deliver } = await startWorker();
    const step = claimedStep();
    await deliver(step);
    const stopping = worker.stop(10_000);
    let stopped = false;
    void stopping.then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    runner.finish(step.id, { ok: true, result: 'last' });
    await stopping;
    expect(store.of('finish')[0]!.items).toMatchObject([{ id: step.id, ok: true }]);
    // Stopping, the finish claims nothing more.
    expect(store.of('finish')[0]!.claim.room).toBe(0);
    expect(store.of('deregister')).toHaveLength(1);
    expect(worker.counts.succeeded).toBe(1);
  });

  it('does not write outcomes that arrive after a drain timed out', async () => {
    const { store, runner, worker, deliver } = await startWorker();
    const step = claimedStep();
    await deliver(step);
    await worker.stop(1);
    expect(store.of('deregister')).toEqual([]);
    runner.finish(step.id, { ok: true, result: 'too late' });
    await new Promise((r) => setTimeout(r, 5));
    expect(store.of('finish')).toEqual([]);
  });
});
