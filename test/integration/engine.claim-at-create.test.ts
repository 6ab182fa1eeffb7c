/**
 * An orchestrator and a worker in one process (`weft run`, the dashboard's
 * engine), on the PostgreSQL queue: the worker takes a new task's ready steps
 * in the create statement itself (weft.create_task_claiming), so a task's
 * start costs one commit and no wake-up. What this must keep: the audit trail
 * (pending → enqueued → running, as any claim writes), the worker's capacity
 * (never more steps than free slots), delayed starts (nothing claimed before
 * their time), and a broker's path (its steps are claimed from deliveries).
 *
 * Rows written by one transaction share its xmin: a step claimed in the create
 * has its `running` row in the create's transaction.
 *
 * A create claims only for a consumer with no claim of its own in flight, so
 * the consumer here never polls (it claims when woken) and a warm-up task
 * lets its first claim end before the tests create theirs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Backend, type Engine } from '../support/engine.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { getTaskView } from '../../src/store/tasks.js';

const CONCURRENCY = 2;
const templates = [
  parseTemplate('namespace: cac\nname: one\nversion: 1.0.0\nsteps:\n  - { name: only, handler: cac.quick }\n', 'one.yaml'),
  parseTemplate(
    'namespace: cac\nname: four_roots\nversion: 1.0.0\nsteps:\n' +
      ['a', 'b', 'c', 'd'].map((n) => `  - { name: ${n}, handler: cac.hold }\n`).join('') +
      '  - { name: end, handler: cac.quick, depends_on: [a, b, c, d] }\n',
    'four_roots.yaml',
  ),
];

/** Held handlers wait here until the test lets them go; `inFlight` and `most` count them. */
const hold = { inFlight: 0, most: 0, release: () => undefined as void, gate: Promise.resolve() };
function closeGate(): void {
  hold.gate = new Promise<void>((r) => (hold.release = r));
}
const handlers = {
  'cac.quick': async () => 1,
  'cac.hold': async () => {
    hold.inFlight++;
    hold.most = Math.max(hold.most, hold.inFlight);
    try {
      await hold.gate;
      return 'held';
    } finally {
      hold.inFlight--;
    }
  },
};

/** For each step of a task: was its `running` row written by the transaction that wrote its `pending` row (the create)? */
async function claimedInCreate(engine: Engine, taskId: string): Promise<Record<string, boolean>> {
  const { rows } = await engine.db.query<{ name: string; same: boolean }>(
    `SELECT s.name, (SELECT p.xmin::text FROM weft.step_transitions p WHERE p.step_id = s.id AND p.to_state = 'pending')
                  = (SELECT r.xmin::text FROM weft.step_transitions r WHERE r.step_id = s.id AND r.to_state = 'running' AND r.seq = 3) AS same
       FROM weft.steps s WHERE s.task_id = $1`,
    [taskId],
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.same === true]));
}

async function history(engine: Engine, taskId: string, step: string): Promise<string[]> {
  const { rows } = await engine.db.query<{ to_state: string }>(
    `SELECT t.to_state FROM weft.step_transitions t JOIN weft.steps s ON s.id = t.step_id
      WHERE s.task_id = $1 AND s.name = $2 ORDER BY t.seq`,
    [taskId, step],
  );
  return rows.map((r) => r.to_state);
}

describe.each<Backend>(['pg', 'rabbitmq'])('a worker in the creating process (%s)', (backend) => {
  let tdb: TestDatabase;
  let engine: Engine;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({
      backend,
      url: tdb.url,
      oneProcess: true,
      templates,
      handlers,
      namespaces: ['cac'],
      concurrency: CONCURRENCY,
      consumerPollMs: 600_000,
    });
    const orch = engine.orchestrators[0]!;
    const warmUp = await orch.createTask({ namespace: 'cac', name: 'one', context: {} });
    expect(await orch.waitForTask(warmUp.id, 15_000)).toBe(true);
  });
  afterAll(async () => {
    hold.release();
    await engine?.stop();
    await tdb?.drop();
  });

  it(
    backend === 'pg'
      ? "takes a new task's ready step in the create statement, and the audit trail still reads pending, enqueued, running, complete"
      : "claims from the broker's delivery, not in the create (its message is already in the outbox)",
    async () => {
      const orch = engine.orchestrators[0]!;
      const { id, dispatched } = await orch.createTask({ namespace: 'cac', name: 'one', context: {} });
      expect(dispatched).toBe(1);
      expect(await orch.waitForTask(id, 15_000)).toBe(true);
      const view = (await getTaskView(engine.db, id))!;
      expect(view.state).toBe('complete');
      expect(view.steps[0]!.result).toBe(1);
      expect(await history(engine, id, 'only')).toEqual(['pending', 'enqueued', 'running', 'complete']);
      expect(await claimedInCreate(engine, id)).toEqual({ only: backend === 'pg' });
    },
  );

  it('never claims more than the worker has free slots: 4 ready steps, 2 slots', async () => {
    closeGate();
    hold.most = 0;
    const orch = engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'cac', name: 'four_roots', context: {} });
    await expect.poll(() => hold.inFlight, { timeout: 15_000, interval: 5 }).toBe(CONCURRENCY);
    const inCreate = await claimedInCreate(engine, id);
    const roots = ['a', 'b', 'c', 'd'].map((n) => inCreate[n]);
    // pg: the create took exactly the two free slots; the other two wait `enqueued` until a slot frees.
    expect(roots.filter(Boolean)).toHaveLength(backend === 'pg' ? CONCURRENCY : 0);
    const { rows } = await engine.db.query<{ n: string }>(`SELECT count(*) AS n FROM weft.steps WHERE task_id = $1 AND state = 'enqueued'`, [id]);
    expect(Number(rows[0]!.n)).toBe(2);
    hold.release();
    expect(await orch.waitForTask(id, 15_000)).toBe(true);
    expect((await getTaskView(engine.db, id))!.state).toBe('complete');
    expect(hold.most).toBe(CONCURRENCY);
  });

  it('claims nothing of a delayed task when it is created; it starts at its time', async () => {
    const orch = engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'cac', name: 'one', context: {}, delay: '300ms' });
    const created = await getTaskView(engine.db, id);
    expect(created!.state).toBe('pending');
    expect(created!.steps[0]!.state).toBe('pending');
    expect(await orch.waitForTask(id, 15_000)).toBe(true);
    expect((await getTaskView(engine.db, id))!.state).toBe('complete');
    expect(await claimedInCreate(engine, id)).toEqual({ only: false });
  });
});
