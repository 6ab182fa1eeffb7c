import { describe, expect, it } from 'vitest';
import { FinishBatcher, type ClaimTarget, type FinishHost, type Settlement } from '../../src/worker/finish-batcher.js';
import type { Finish } from '../../src/worker/step-outcome.js';
import { finishSteps, type FinishItem } from '../../src/store/finish.js';
import type { Database } from '../../src/store/database.js';
import type { StepEventRow } from '../../src/store/events.js';
import { silentLogger } from '../../src/shared/logger.js';
import { RetryTimer } from '../../src/shared/retry-timer.js';
import { FakeStore, claimedStep, soon } from './worker-fakes.js';

function success(name: string): Finish {
  const step = claimedStep({ name });
  return { step, outcome: { ok: true, result: name }, item: { id: step.id, attempt: 1, ok: true, resultJson: JSON.stringify(name), durationMs: 1 } };
}

/** A batcher over the fake store, with a host that records what it is told. */
function batcher(o: { freeSlots?: number; retryDelayMs?: (failures: number) => number } = {}) {
  const sink = new FakeStore();
  const committed: Array<{ names: string[]; statements: number }> = [];
  const settled: Array<[string, Settlement['kind']]> = [];
  /** Each claim target's room, and the slots reserved when it was asked for. */
  const targets: Array<[room: number, reserved: number]> = [];
  let batches = 0;
  const host: FinishHost = {
    freeSlots: () => o.freeSlots ?? 0,
    claimTarget: (room): ClaimTarget => {
      targets.push([room, b.reserved]);
      return { queues: ['step.t.native'], room };
    },
    committed: (batch, outcomes) => committed.push({ names: batch.map((f) => f.step.name), statements: outcomes.length }),
    settled: (f, how) => settled.push([f.step.name, how.kind]),
    batchSettled: () => batches++,
  };
  const b: FinishBatcher = new FinishBatcher({ sink, host, log: silentLogger(), runtime: 'native', retryDelayMs: o.retryDelayMs ?? (() => 1) });
  return { b, sink, committed, settled, targets, batches: () => batches };
}

describe('FinishBatcher', () => {
  it('writes the runs that finish in one turn of the event loop with one statement (group commit)', async () => {
    const { b, sink, settled, batches } = batcher();
    for (const n of ['a', 'b', 'c']) b.add(success(n));
    await soon(() => expect(batches()).toBe(1));
    expect(sink.of('finish')).toHaveLength(1);
    expect(sink.of('finish')[0]!.items).toHaveLength(3);
    expect(b.stats).toEqual({ statements: 1, runs: 3 });
    expect(settled).toEqual([
      ['a', 'accepted'],
      ['b', 'accepted'],
      ['c', 'accepted'],
    ]);
  });

  it('reserves the slots a batch frees for its claims, and gives them back after', async () => {
    const { b, targets, batches } = batcher({ freeSlots: 5 });
    b.add(success('a'));
    b.add(success('b'));
    await soon(() => expect(batches()).toBe(1));
    // While in flight, the 2 runs' slots and the 5 free ones were promised to this statement's claims.
    expect(targets).toEqual([[7, 7]]);
    expect(b.reserved).toBe(0);
  });

  it('keeps the runs of a failed write, ahead of newer ones, and writes them in order once the database is back', async () => {
    const health: string[] = [];
    const { b, sink, settled, batches } = batcher({
      retryDelayMs: (failures) => {
        const h = b.health();
        health.push(h.status === 'degraded' ? h.reason : h.status);
        // A run that finishes while the write backs off goes behind the ones that wait.
        if (failures === 1) b.add(success('c'));
        return 1;
      },
    });
    sink.failWrites = 3;
    b.add(success('a'));
    b.add(success('b'));
    await soon(() => expect(batches()).toBe(1));
    // Three failures in a row: /health says degraded, naming the error.
    expect(health.slice(0, 2)).toEqual(['healthy', 'healthy']);
    expect(health[2]).toMatch(/^writing step outcomes failed 3 times in a row since .* \(connection terminated unexpectedly\)/);
    const writes = sink.of('finish').map((c) => c.items.map((i) => i.ok && i.resultJson));
    expect(writes).toHaveLength(4);
    expect(writes[0]).toEqual(['"a"', '"b"']);
    for (const w of writes.slice(1)) expect(w).toEqual(['"a"', '"b"', '"c"']);
    expect(settled.map(([n]) => n)).toEqual(['a', 'b', 'c']);
    expect(b.health()).toEqual({ status: 'healthy' });
    expect(b.reserved).toBe(0);
  });

  it('settles a run the fence refused as lost, and one recorded by an earlier write as recorded', async () => {
    const { b, sink, settled, batches } = batcher();
    const lost = success('lost');
    const earlier = success('earlier');
    sink.fenced.add(lost.step.id).add(earlier.step.id);
    sink.recordedEarlier.push({ step_id: earlier.step.id, task_id: 'task-1', name: 'earlier', state: 'complete', attempt: 1, watched: false });
    b.add(lost);
    b.add(earlier);
    b.add(success('fine'));
    await soon(() => expect(batches()).toBe(1));
    expect(settled).toEqual([
      ['lost', 'lost'],
      ['earlier', 'recorded'],
      ['fine', 'accepted'],
    ]);
  });

  it('writes nothing once closed', async () => {
    const { b, sink } = batcher();
    b.close();
    b.add(success('a'));
    await new Promise((r) => setTimeout(r, 5));
    expect(sink.calls).toEqual([]);
  });
});

/** A Database that refuses (SQLSTATE 22P05) any finish_steps call carrying `poison` in its results. */
function refusingDatabase(poison: string) {
  const batches: string[][] = [];
  const db = {
    async query(_sql: string, params: unknown[]) {
      const ids = params[1] as string[];
      const successes = params[2] as string | null;
      const failures = params[3] as string | null;
      batches.push(ids);
      if (successes?.includes(poison)) throw Object.assign(new Error('unsupported Unicode escape sequence'), { code: '22P05' });
      const rows: StepEventRow[] = [];
      for (const i of [...JSON.parse(successes ?? '[]'), ...JSON.parse(failures ?? '[]')] as Array<{ id: string; attempt: number; result?: unknown }>) {
        const state = 'result' in i ? 'complete' : 'error';
        rows.push({
          kind: 'finished',
          step_id: i.id,
          task_id: 't',
          state,
          queue: null,
          name: i.id,
          attempt: i.attempt,
          detail: null,
          context: null,
          dependency_results: null,
          watched: false,
        });
      }
      return { rows };
    },
  };
  return { db: db as unknown as Database, batches };
}

describe('finishSteps, the sink statement', () => {
  it('fails only the item whose data the database refused; the others are recorded', async () => {
    const { db, batches } = refusingDatabase('POISON');
    const items: FinishItem[] = [
      { id: 's1', attempt: 1, ok: true, resultJson: '1', durationMs: 1 },
      { id: 's2', attempt: 1, ok: true, resultJson: '"POISON"', durationMs: 1 },
      { id: 's3', attempt: 1, ok: true, resultJson: '3', durationMs: 1 },
    ];
    const out = await finishSteps(db, 'w', items, { queues: [], room: 0, claimQueued: true, outbox: false });
    expect(out.finished.map((f) => [f.step_id, f.state])).toEqual([
      ['s1', 'complete'],
      ['s2', 'error'],
      ['s3', 'complete'],
    ]);
    // The batch, then each item alone, then the refused item's replacement: a permanent failure naming the reason.
    expect(batches).toEqual([['s1', 's2', 's3'], ['s1'], ['s2'], ['s2'], ['s3']]);
  });
});

describe('RetryTimer', () => {
  it('fires once at the earliest time it was given, and not after stop()', async () => {
    let fired = 0;
    const t = new RetryTimer(() => fired++);
    t.wakeAt(Date.now() + 60_000);
    t.wakeAt(Date.now() + 1); // earlier: moves the timer forward
    t.wakeAt(Date.now() + 30_000); // later: ignored
    await soon(() => expect(fired).toBe(1));
    t.wakeAt(Date.now()); // fired: a new time sets it again
    await soon(() => expect(fired).toBe(2));
    t.stop();
    t.wakeAt(Date.now());
    await new Promise((r) => setTimeout(r, 10));
    expect(fired).toBe(2);
  });

  it('waits for a time further than setTimeout can count (a task delayed by a year) instead of firing at once', async () => {
    let fired = 0;
    const t = new RetryTimer(() => fired++);
    t.wakeAt(Date.now() + 365 * 86_400_000);
    await new Promise((r) => setTimeout(r, 30));
    t.stop();
    expect(fired).toBe(0);
  });
});
