/**
 * Child workflows (issue 19): a `workflow` step starts a task of another
 * template with a context mapped from its own task, waits for it holding no
 * worker, and completes with the child's results or fails naming the child's
 * error. Cancelling (or failing) the parent cancels the child; the views link
 * both ways; a child that cannot start fails the step saying why; a retried
 * step starts a new child; two orchestrators start one child per step; a
 * restart of every process mid-child loses nothing. Both messaging backends,
 * with the shipped example (templates/order_flow.yaml → charge_card.yaml).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Backend, type Engine } from '../support/engine.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { getTaskView } from '../../src/store/tasks.js';
import { untilTask as until, stepNamed as step } from '../support/task-view.js';
import type { Database } from '../../src/store/database.js';
import { ValidationError } from '../../src/shared/errors.js';

const TEMPLATES = [
  // A child that waits for a signal: it runs as long as a test wants.
  parseTemplate(
    'namespace: wf_t\nname: held\nversion: 1.0.0\nsteps:\n  - { name: hold, type: wait }\n  - { name: done, handler: wf.echo, depends_on: [hold] }',
    'held.yaml',
  ),
  parseTemplate(
    [
      'namespace: wf_t',
      'name: parent_of_held',
      'version: 1.0.0',
      'steps:',
      '  - { name: start, handler: wf.stamp }',
      '  - { name: child, type: workflow, depends_on: [start], workflow: { name: held, context: { from_parent: start.n } } }',
      '  - { name: after, handler: wf.echo, depends_on: [child] }',
    ].join('\n'),
    'parent_of_held.yaml',
  ),
  // A parent whose other branch fails while the child waits.
  parseTemplate(
    [
      'namespace: wf_t',
      'name: doomed',
      'version: 1.0.0',
      'steps:',
      '  - { name: child, type: workflow, workflow: { name: held } }',
      '  - { name: breaks, handler: wf.fail_later, retry: { max_attempts: 1 } }',
    ].join('\n'),
    'doomed.yaml',
  ),
  parseTemplate('namespace: wf_t\nname: root_child\nversion: 1.0.0\nsteps:\n  - { name: child, type: workflow, workflow: { name: held } }', 'root_child.yaml'),
  parseTemplate('namespace: wf_t\nname: orphan\nversion: 1.0.0\nsteps:\n  - { name: child, type: workflow, workflow: { name: nowhere } }', 'orphan.yaml'),
  // Its mapping leaves out what charge_card requires (card_token).
  parseTemplate(
    [
      'namespace: wf_t',
      'name: bad_mapping',
      'version: 1.0.0',
      'steps:',
      '  - name: pay',
      '    type: workflow',
      '    workflow: { namespace: shop, name: charge_card, context: { order_id: context.order_id, amount: context.amount } }',
    ].join('\n'),
    'bad_mapping.yaml',
  ),
];
const HANDLERS = {
  'wf.stamp': () => ({ n: 7 }),
  'wf.echo': (step: { context: unknown; dependency_results: Record<string, unknown> }) => ({ context: step.context, saw: step.dependency_results }),
  'wf.fail_later': async () => {
    await new Promise((r) => setTimeout(r, 800));
    throw new Error('the other branch broke');
  },
};
const NAMESPACES = ['wf_t', 'shop'];
const ORDER = { order_id: 'A-1', items: [{ sku: 'tea', price: 4.5, qty: 2 }], card_token: 'tok_visa' };

const transitions = async (db: Database, stepId: string) =>
  (
    await db.query<{ t: string }>(`SELECT coalesce(from_state, 'null') || '→' || to_state AS t FROM weft.step_transitions WHERE step_id = $1 ORDER BY seq`, [
      stepId,
    ])
  ).rows.map((r) => r.t);

describe.each<Backend>(['pg', 'rabbitmq'])('child workflows (%s)', (backend) => {
  let tdb: TestDatabase;
  let engine: Engine;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    // One worker slot: a workflow step that held it would leave none for its child's steps.
    engine = await startEngine({ backend, url: tdb.url, templates: TEMPLATES, handlers: HANDLERS, namespaces: NAMESPACES, concurrency: 1 });
  });
  afterAll(async () => {
    await engine?.stop();
    await tdb?.drop();
  });

  it("runs charge_card as a child with the mapped context, holding no worker slot, and hands its results to the parent's children", async () => {
    const orch = engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'shop', name: 'order_flow', context: ORDER });
    expect(await orch.waitForTask(id, 30_000)).toBe(true);
    const parent = (await getTaskView(engine.db, id))!;
    expect(parent.state).toBe('complete');
    const charge = step(parent, 'charge');
    expect(charge.type).toBe('workflow');
    const childId = charge.child_task_id!;
    const child = (await getTaskView(engine.db, childId))!;
    expect(child).toMatchObject({ namespace: 'shop', name: 'charge_card', version: '1.0.0', state: 'complete' });
    expect(child.context).toEqual({ order_id: 'A-1', card_token: 'tok_visa', amount: 9, currency: 'EUR' });
    expect(child.parent).toEqual({ task_id: id, step: 'charge', namespace: 'shop', name: 'order_flow' });
    expect(charge.result).toEqual({ task_id: childId, results: { capture: step(child, 'capture').result } });
    expect(step(parent, 'ship').result).toEqual({ shipped: true, order_id: 'A-1', charge_id: 'ch_A-1', payment_task: childId });
    expect(await transitions(engine.db, charge.id)).toEqual(['null→pending', 'pending→waiting', 'waiting→running', 'running→complete']);
    const why = await engine.db.query<{ metadata: Record<string, unknown> }>(
      `SELECT metadata FROM weft.step_transitions WHERE step_id = $1 AND to_state = 'running'`,
      [charge.id],
    );
    expect(why.rows[0]!.metadata).toMatchObject({ reason: 'child complete', child_task_id: childId });
  });

  it("fails the workflow step naming the child's error when the child fails, and the parent with it", async () => {
    const orch = engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'shop', name: 'order_flow', context: { ...ORDER, card_token: 'tok_declined' } });
    expect(await orch.waitForTask(id, 30_000)).toBe(true);
    const parent = (await getTaskView(engine.db, id))!;
    expect(parent.state).toBe('error');
    const charge = step(parent, 'charge');
    expect(charge.state).toBe('error');
    const child = (await getTaskView(engine.db, charge.child_task_id!))!;
    expect(child.state).toBe('error');
    const error = charge.error as { class: string; message: string };
    expect(error.class).toBe('ChildWorkflowFailed');
    expect(error.message).toContain(`child workflow shop/charge_card@1.0.0 (task ${child.id}) failed at step authorize`);
    expect(error.message).toContain('card tok_declined was declined for 9');
    expect(step(parent, 'ship').state).toBe('cancelled');
  });

  it('cancelling the parent cancels its running child, with the reason in the child', async () => {
    const orch = engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'wf_t', name: 'parent_of_held' });
    const waiting = await until(engine.db, id, (v) => step(v, 'child').child_task_id !== null);
    const childId = step(waiting, 'child').child_task_id!;
    const child = await until(engine.db, childId, (v) => step(v, 'hold').state === 'waiting');
    expect(child.context).toEqual({ from_parent: 7 });
    await orch.cancelTask(id, 'test', 'order withdrawn');
    const cancelled = (await getTaskView(engine.db, childId))!;
    expect(cancelled.state).toBe('cancelled');
    expect(step(cancelled, 'hold').state).toBe('cancelled');
    expect(cancelled.error).toMatchObject({ reason: 'cancelled', by: 'test', message: `its parent task ${id} ended (step child)` });
    expect(step((await getTaskView(engine.db, id))!, 'child').state).toBe('cancelled');
  });

  it('a parent that fails elsewhere cancels the child its waiting workflow step started', async () => {
    const orch = engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'wf_t', name: 'doomed' });
    const waiting = await until(engine.db, id, (v) => step(v, 'child').child_task_id !== null);
    expect(await orch.waitForTask(id, 20_000)).toBe(true);
    const parent = (await getTaskView(engine.db, id))!;
    expect(parent.state).toBe('error');
    expect(step(parent, 'child').state).toBe('cancelled');
    expect((await getTaskView(engine.db, step(waiting, 'child').child_task_id!))!.state).toBe('cancelled');
  });

  it('a child that cannot start fails the step for good, saying why: template not registered, context refused by its input_schema', async () => {
    const orch = engine.orchestrators[0]!;
    const orphan = await orch.createTask({ namespace: 'wf_t', name: 'orphan' });
    const bad = await orch.createTask({ namespace: 'wf_t', name: 'bad_mapping', context: { order_id: 'B-2', amount: 3 } });
    for (const id of [orphan.id, bad.id]) expect(await orch.waitForTask(id, 20_000)).toBe(true);
    const o = step((await getTaskView(engine.db, orphan.id))!, 'child');
    expect(o).toMatchObject({ state: 'error', attempts: 1, child_task_id: null });
    expect(o.error).toMatchObject({ class: 'ChildWorkflowNotFound' });
    expect((o.error as { message: string }).message).toMatch(/^workflow step child of task \S+ runs wf_t\/nowhere: no template wf_t\/nowhere is registered/);
    const b = step((await getTaskView(engine.db, bad.id))!, 'pay');
    expect(b.error).toMatchObject({ class: 'ChildWorkflowInvalid' });
    expect((b.error as { message: string }).message).toContain('card_token');
  });

  it('a task created in a batch whose root step is a workflow step starts its child at once', async () => {
    const orch = engine.orchestrators[0]!;
    const [item] = await orch.createTasks([{ namespace: 'wf_t', name: 'root_child' }]);
    expect(item, JSON.stringify(item)).toMatchObject({ index: 0, outcome: 'created' });
    const id = (item as { id: string }).id;
    const childId = step(await until(engine.db, id, (v) => step(v, 'child').child_task_id !== null), 'child').child_task_id!;
    await until(engine.db, childId, (v) => step(v, 'hold').state === 'waiting');
    await orch.signalStep({ task: childId, step: 'hold' }, { from: 'batch' }, 'test');
    expect(await orch.waitForTask(id, 20_000)).toBe(true);
    expect(step((await getTaskView(engine.db, id))!, 'child').state).toBe('complete');
  });

  it('retrying a parent whose child failed starts a new child, which can then succeed', async () => {
    const orch = engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'wf_t', name: 'parent_of_held' });
    const first = step(await until(engine.db, id, (v) => step(v, 'child').child_task_id !== null), 'child').child_task_id!;
    await until(engine.db, first, (v) => step(v, 'hold').state === 'waiting');
    await orch.cancelTask(first, 'test', 'try again');
    await until(engine.db, id, (v) => v.state === 'error');
    expect((step((await getTaskView(engine.db, id))!, 'child').error as { class: string }).class).toBe('ChildWorkflowCancelled');
    await orch.retryTask(id, { by: 'test' });
    const second = step(await until(engine.db, id, (v) => ![null, first].includes(step(v, 'child').child_task_id)), 'child').child_task_id!;
    await until(engine.db, second, (v) => step(v, 'hold').state === 'waiting');
    await orch.signalStep({ task: second, step: 'hold' }, { ok: true }, 'test');
    expect(await orch.waitForTask(id, 20_000)).toBe(true);
    const done = (await getTaskView(engine.db, id))!;
    expect(done.state).toBe('complete');
    expect(step(done, 'child').result).toEqual({ task_id: second, results: { done: { context: { from_parent: 7 }, saw: { hold: { ok: true } } } } });
  });
});

describe('child workflows with several orchestrators and a restart', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase();
  });
  afterAll(async () => {
    await tdb?.drop();
  });

  it('two orchestrators start exactly one child per workflow step', async () => {
    const engine = await startEngine({ backend: 'pg', url: tdb.url, templates: TEMPLATES, handlers: HANDLERS, namespaces: NAMESPACES, orchestrators: 2 });
    try {
      const ids = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          engine.orchestrators[i % 2]!.createTask({ namespace: 'shop', name: 'order_flow', context: { ...ORDER, order_id: `M-${i}` } }),
        ),
      );
      for (const { id } of ids) expect(await engine.orchestrators[0]!.waitForTask(id, 30_000)).toBe(true);
      const { rows } = await engine.db.query<{ parents: number; children: number; states: string[] }>(
        `SELECT count(DISTINCT parent_step_id)::int AS parents, count(*)::int AS children, array_agg(DISTINCT state) AS states
           FROM weft.tasks WHERE namespace = 'shop' AND name = 'charge_card'`,
      );
      expect(rows[0]).toEqual({ parents: 20, children: 20, states: ['complete'] });
    } finally {
      await engine.stop();
    }
  });

  it('registration refuses a template that would close a cycle of templates calling each other', async () => {
    const engine = await startEngine({ backend: 'pg', url: tdb.url, templates: TEMPLATES, handlers: HANDLERS, namespaces: NAMESPACES });
    try {
      const catalog = engine.orchestrators[0]!.templates;
      const yaml = (name: string, callee: string) =>
        parseTemplate(
          `namespace: wf_cycle\nname: ${name}\nversion: 1.0.0\nsteps:\n  - { name: call, type: workflow, workflow: { name: ${callee} } }`,
          'x.yaml',
        );
      expect(await catalog.register(yaml('a', 'b'))).toBe('created');
      const refused = await catalog.register(yaml('b', 'a')).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ValidationError);
      expect((refused as Error).message).toContain('wf_cycle/b@1.0.0 (step call) → wf_cycle/a@1.0.0 (step call) → wf_cycle/b@1.0.0');
      const { rows } = await engine.db.query(`SELECT 1 FROM weft.templates WHERE namespace = 'wf_cycle' AND name = 'b'`);
      expect(rows).toHaveLength(0);
    } finally {
      await engine.stop();
    }
  });

  it('a child running when every process stops completes its parent under the next engine', async () => {
    const first = await startEngine({ backend: 'pg', url: tdb.url, templates: TEMPLATES, handlers: HANDLERS, namespaces: NAMESPACES });
    const { id } = await first.orchestrators[0]!.createTask({ namespace: 'wf_t', name: 'parent_of_held' });
    const childId = step(await until(first.db, id, (v) => step(v, 'child').child_task_id !== null), 'child').child_task_id!;
    await until(first.db, childId, (v) => step(v, 'hold').state === 'waiting');
    await first.stop();

    const second = await startEngine({ backend: 'pg', url: tdb.url, templates: TEMPLATES, handlers: HANDLERS, namespaces: NAMESPACES });
    try {
      await second.orchestrators[0]!.signalStep({ task: childId, step: 'hold' }, { ok: 'after restart' }, 'test');
      expect(await second.orchestrators[0]!.waitForTask(id, 20_000)).toBe(true);
      const done = (await getTaskView(second.db, id))!;
      expect(done.state).toBe('complete');
      expect(step(done, 'after').result).toMatchObject({ saw: { child: { task_id: childId } } });
    } finally {
      await second.stop();
    }
  });
});
