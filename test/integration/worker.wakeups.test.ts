/**
 * A worker on the PostgreSQL queue in a process of its own, with a few tasks
 * in flight: every step it has room for is started by a wake-up, never left
 * to the fallback poll. The worker's claims and its finishes (which claim
 * too) each renew or remove its waiter registration, and two of them can be
 * in flight at once; one that filled only its own share of the free slots
 * must not remove a registration another made for slots it did not see.
 *
 * The worker's poll is set far beyond the test's deadlines: only a wake-up
 * can meet them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { parseTemplate } from '../../src/core/template/parse.js';

const templates = [parseTemplate('namespace: wk\nname: one\nversion: 1.0.0\nsteps:\n  - { name: only, handler: wk.quick }\n', 'one.yaml')];
const handlers = { 'wk.quick': async () => 1 };

describe('wake-ups of a worker in another process (PostgreSQL queue)', () => {
  let tdb: TestDatabase;
  let engine: Engine;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend: 'pg', url: tdb.url, templates, handlers, namespaces: ['wk'], concurrency: 8, consumerPollMs: 600_000 });
  });
  afterAll(async () => {
    await engine?.stop();
    await tdb?.drop();
  });

  it.each([2, 4])('%i tasks in flight, 120 tasks: each ends within 10 s, so no step waited for the poll', async (inFlight) => {
    const orch = engine.orchestrators[0]!;
    const late: string[] = [];
    let next = 0;
    const lane = async () => {
      while (next < 120 && late.length === 0) {
        next++;
        const { id } = await orch.createTask({ namespace: 'wk', name: 'one', context: {} });
        if (!(await orch.waitForTask(id, 10_000))) late.push(id);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
    expect(late).toEqual([]);
  });
});
