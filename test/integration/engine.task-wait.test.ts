/**
 * Waiting for a task's end (issue 20): a waiter on a task its own orchestrator
 * created, while that orchestrator has listened without a break, needs no
 * first read of the task's state (every end reaches the orchestrator: told
 * in-process or through NOTIFY); any other waiter reads it once, so an end
 * before the wait is not missed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { Database } from '../../src/store/database.js';

const templates = [parseTemplate('namespace: t_wait\nname: held\nversion: 1.0.0\nsteps:\n  - { name: only, handler: test.held }\n', 'held.yaml')];

/** test.held runs until the test lets it go. */
const held = { release: () => {}, gate: Promise.resolve(), started: 0 };
const handlers = {
  'test.held': async () => {
    held.started++;
    await held.gate;
    return { released: true };
  },
};

let tdb: TestDatabase;
let engine: Engine;

beforeAll(async () => {
  tdb = await createTestDatabase();
  engine = await startEngine({ backend: 'pg', url: tdb.url, orchestrators: 2, templates, handlers: handlers as never, namespaces: ['t_wait'] });
});
afterEach(() => {
  held.release();
  vi.restoreAllMocks();
});
afterAll(async () => {
  await engine?.stop();
  await tdb?.drop();
});

/** Count the reads of this task's state (the waiter's check), through the real database. */
function stateReads(taskId: string): { count: () => number } {
  let n = 0;
  const real = Database.prototype.queryIdempotent;
  vi.spyOn(Database.prototype, 'queryIdempotent').mockImplementation(function (this: Database, text: string, values?: unknown[], name?: string) {
    if (name === 'weft_task_state' && values?.[0] === taskId) n++;
    return real.call(this, text, values, name) as never;
  });
  return { count: () => n };
}

async function untilStarted(n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (held.started < n) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for run ${n} of test.held`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('waiting for a task', () => {
  it("the creating orchestrator's waiter reads no state before the end is told; another orchestrator's reads it once", async () => {
    held.gate = new Promise((r) => (held.release = r));
    const [own, other] = engine.orchestrators as [(typeof engine.orchestrators)[0], (typeof engine.orchestrators)[0]];
    const before = held.started;
    const { id } = await own.createTask({ namespace: 't_wait', name: 'held' });
    const reads = stateReads(id);
    const waitOwn = own.waitForTask(id, 10_000);
    const waitOther = other.waitForTask(id, 10_000);
    await untilStarted(before + 1);
    expect(reads.count()).toBe(1); // the other orchestrator's first check only
    held.release();
    expect(await waitOwn).toBe(true);
    expect(await waitOther).toBe(true);
    expect(reads.count()).toBe(1);
  });

  it('a task that ended before the wait is found ended by its first read, on the creating orchestrator too', async () => {
    held.gate = Promise.resolve();
    const own = engine.orchestrators[0]!;
    const { id } = await own.createTask({ namespace: 't_wait', name: 'held' });
    expect(await own.waitForTask(id, 10_000)).toBe(true);
    const reads = stateReads(id);
    expect(await own.waitForTask(id, 10_000)).toBe(true);
    expect(reads.count()).toBe(1);
  });
});
