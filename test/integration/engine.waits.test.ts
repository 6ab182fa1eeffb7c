/**
 * Steps and tasks that wait (issue 19): a delayed start starts no step before
 * its time; a sleep holds no worker slot; a wait step completes on a signal
 * and its payload reaches its children, refuses a second signal (409) and a
 * payload its schema refuses (400 naming the field), and times out the
 * documented way (fail, or the on_timeout result). Both messaging backends; a
 * restart of every process mid-wait loses nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Backend, type Engine } from '../support/engine.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { getTaskView } from '../../src/store/tasks.js';
import { untilTask as until, stepNamed as step } from '../support/task-view.js';
import { ConflictError, NotFoundError, ValidationError } from '../../src/shared/errors.js';
import type { Database } from '../../src/store/database.js';

const TEMPLATES = [
  parseTemplate(
    'namespace: waits_t\nname: later\nversion: 1.0.0\nsteps:\n  - { name: first, handler: wt.stamp }\n  - { name: second, handler: wt.echo, depends_on: [first] }',
    'later.yaml',
  ),
  parseTemplate(
    'namespace: waits_t\nname: nap\nversion: 1.0.0\nsteps:\n  - { name: before, handler: wt.stamp }\n' +
      '  - { name: nap, type: sleep, duration: 1500ms, depends_on: [before] }\n  - { name: after, handler: wt.echo, depends_on: [nap] }',
    'nap.yaml',
  ),
  parseTemplate('namespace: waits_t\nname: quick\nversion: 1.0.0\nsteps:\n  - { name: only, handler: wt.stamp }', 'quick.yaml'),
  parseTemplate(
    [
      'namespace: waits_t',
      'name: approve',
      'version: 1.0.0',
      'steps:',
      '  - { name: ask, handler: wt.stamp }',
      '  - name: approval',
      '    type: wait',
      '    depends_on: [ask]',
      '    payload_schema: { type: object, required: [approved], properties: { approved: { type: boolean }, by: { type: string } } }',
      '  - { name: act, handler: wt.echo, depends_on: [approval] }',
    ].join('\n'),
    'approve.yaml',
  ),
  parseTemplate(
    'namespace: waits_t\nname: impatient\nversion: 1.0.0\nsteps:\n  - { name: ask, type: wait, timeout: 1s }\n  - { name: act, handler: wt.echo, depends_on: [ask] }',
    'impatient.yaml',
  ),
  parseTemplate(
    'namespace: waits_t\nname: lenient\nversion: 1.0.0\nsteps:\n' +
      '  - { name: ask, type: wait, timeout: 1s, on_timeout: { result: { approved: false, why: silence } } }\n' +
      '  - { name: act, handler: wt.echo, depends_on: [ask] }',
    'lenient.yaml',
  ),
];
const HANDLERS = {
  'wt.stamp': () => ({ at: new Date().toISOString() }),
  'wt.echo': (step: { dependency_results: Record<string, unknown> }) => ({ saw: step.dependency_results }),
};

describe.each<Backend>(['pg', 'rabbitmq'])('steps and tasks that wait (%s)', (backend) => {
  let tdb: TestDatabase;
  let engine: Engine;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend, url: tdb.url, templates: TEMPLATES, handlers: HANDLERS, namespaces: ['waits_t'], concurrency: 1 });
  });
  afterAll(async () => {
    await engine?.stop();
    await tdb?.drop();
  });

  it('a task with a delay is pending, shows its run_at, and starts no step before it', async () => {
    const orch = engine.orchestrators[0]!;
    const created = await orch.createTask({ namespace: 'waits_t', name: 'later', delay: '1s' });
    expect(created.dispatched).toBe(0);
    const early = (await getTaskView(engine.db, created.id))!;
    expect(early.state).toBe('pending');
    expect(early.run_at?.toISOString()).toBe(created.run_at!.toISOString());
    expect(early.steps.map((s) => s.state)).toEqual(['pending', 'pending']);
    expect(await orch.waitForTask(created.id, 20_000)).toBe(true);
    const done = (await getTaskView(engine.db, created.id))!;
    expect(done.state).toBe('complete');
    // Every step started at or after the run_at the database kept (times of the database's own clock).
    for (const s of done.steps) expect(s.started_at!.getTime()).toBeGreaterThanOrEqual(done.run_at!.getTime());
  });

  it('run_at and delay are checked: a bad one is a ValidationError naming the field', async () => {
    const orch = engine.orchestrators[0]!;
    await expect(orch.createTask({ namespace: 'waits_t', name: 'later', delay: '15' })).rejects.toMatchObject({ path: 'delay' });
    await expect(orch.createTask({ namespace: 'waits_t', name: 'later', run_at: '2026-12-24 09:00' })).rejects.toMatchObject({ path: 'run_at' });
    await expect(orch.createTask({ namespace: 'waits_t', name: 'later', run_at: '2026-12-24T09:00:00Z', delay: '1s' })).rejects.toBeInstanceOf(ValidationError);
  });

  it('a sleeping step holds no worker slot: the only slot runs another task meanwhile, and the sleep then completes', async () => {
    const orch = engine.orchestrators[0]!;
    const worker = engine.workers[0]!;
    const { id } = await orch.createTask({ namespace: 'waits_t', name: 'nap' });
    const sleeping = await until(engine.db, id, (v) => step(v, 'nap').state === 'waiting');
    expect(step(sleeping, 'nap').run_after).not.toBeNull();
    expect(worker.inFlight()).toBe(0);
    // The worker has one slot (concurrency 1): another task runs to its end while the sleep waits.
    const other = await orch.createTask({ namespace: 'waits_t', name: 'quick' });
    expect(await orch.waitForTask(other.id, 20_000)).toBe(true);
    expect(step((await getTaskView(engine.db, id))!, 'nap').state).toBe('waiting');
    expect(await orch.waitForTask(id, 20_000)).toBe(true);
    const done = (await getTaskView(engine.db, id))!;
    expect(done.state).toBe('complete');
    const nap = step(done, 'nap');
    expect(nap.result).toEqual({ slept_until: expect.any(String) });
    expect(step(done, 'after').result).toEqual({ saw: { nap: nap.result } });
  });

  it('a wait step completes on a signal; its payload is its result and reaches its children', async () => {
    const orch = engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'waits_t', name: 'approve' });
    const waiting = await until(engine.db, id, (v) => step(v, 'approval').state === 'waiting');
    expect(step(waiting, 'approval').callback_path).toMatch(/^\/v1\/callbacks\/[0-9a-f]{64}$/);
    expect(step(waiting, 'approval').run_after).toBeNull(); // no timeout: no deadline

    const bad = await orch.signalStep({ task: id, step: 'approval' }, { approved: 'yes' }, 'test').catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ValidationError);
    expect((bad as ValidationError).path).toBe('payload.approved');
    expect((bad as Error).message).toContain('payload.approved must be boolean');

    const ok = await orch.signalStep({ task: id, step: 'approval' }, { approved: true, by: 'ada' }, 'test');
    expect(ok).toEqual({ task_id: id, step: 'approval', state: 'complete' });
    expect(await orch.waitForTask(id, 20_000)).toBe(true);
    const done = (await getTaskView(engine.db, id))!;
    expect(done.state).toBe('complete');
    expect(step(done, 'approval').result).toEqual({ approved: true, by: 'ada' });
    expect(step(done, 'act').result).toEqual({ saw: { approval: { approved: true, by: 'ada' } } });

    const again = await orch.signalStep({ task: id, step: 'approval' }, { approved: false }, 'test').catch((e: unknown) => e);
    expect(again).toBeInstanceOf(ConflictError);
    expect((again as Error).message).toBe(
      `step approval of task ${id} is complete, not waiting; a signal is taken only while the step waits (it already has its result: a signal or its timeout came first)`,
    );
    const notWait = await orch.signalStep({ task: id, step: 'act' }, {}, 'test').catch((e: unknown) => e);
    expect(notWait).toBeInstanceOf(ConflictError);
    expect((notWait as Error).message).toContain('is a standard step, not a wait step');
    await expect(orch.signalStep({ task: id, step: 'nope' }, {}, 'test')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('a signal to a step whose parents have not completed is a 409 saying so', async () => {
    const orch = engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'waits_t', name: 'approve', delay: '1h' });
    await expect(orch.signalStep({ task: id, step: 'approval' }, { approved: true }, 'test')).rejects.toThrow(
      /is pending, not waiting; .*its parents have not completed yet, or its task has not started/,
    );
    await orch.cancelTask(id, 'test');
  });

  it('a wait that times out fails with its task (on_timeout: fail, the default)', async () => {
    const orch = engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'waits_t', name: 'impatient' });
    expect(await orch.waitForTask(id, 20_000)).toBe(true);
    const done = (await getTaskView(engine.db, id))!;
    expect(done.state).toBe('error');
    expect(step(done, 'ask').state).toBe('error');
    expect(step(done, 'ask').error).toMatchObject({ class: 'WaitTimedOut', message: 'wait step ask got no signal within its timeout (1s)' });
    expect(step(done, 'act').state).toBe('cancelled');
  });

  it('a wait that times out with on_timeout: { result } completes with that result, which its children see', async () => {
    const orch = engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'waits_t', name: 'lenient' });
    expect(await orch.waitForTask(id, 20_000)).toBe(true);
    const done = (await getTaskView(engine.db, id))!;
    expect(done.state).toBe('complete');
    expect(step(done, 'ask').result).toEqual({ approved: false, why: 'silence' });
    expect(step(done, 'act').result).toEqual({ saw: { ask: { approved: false, why: 'silence' } } });
  });

  it('cancelling a task cancels its waiting step, with an audit row', async () => {
    const orch = engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'waits_t', name: 'approve' });
    await until(engine.db, id, (v) => step(v, 'approval').state === 'waiting');
    await orch.cancelTask(id, 'test', 'changed my mind');
    const v = (await getTaskView(engine.db, id))!;
    expect(step(v, 'approval').state).toBe('cancelled');
    const { rows } = await engine.db.query<{ from_state: string; to_state: string }>(
      `SELECT from_state, to_state FROM weft.step_transitions WHERE step_id = $1 ORDER BY seq`,
      [step(v, 'approval').id],
    );
    expect(rows.map((r) => `${r.from_state}→${r.to_state}`)).toEqual(['null→pending', 'pending→waiting', 'waiting→cancelled']);
  });
});

describe('a restart of every process mid-wait loses nothing', () => {
  let tdb: TestDatabase;
  afterAll(async () => {
    await tdb?.drop();
  });

  it('a sleep and a wait begun under one engine end under the next, on the same database', async () => {
    tdb = await createTestDatabase();
    const first = await startEngine({ backend: 'pg', url: tdb.url, templates: TEMPLATES, handlers: HANDLERS, namespaces: ['waits_t'] });
    const nap = await first.orchestrators[0]!.createTask({ namespace: 'waits_t', name: 'nap' });
    const approve = await first.orchestrators[0]!.createTask({ namespace: 'waits_t', name: 'approve' });
    await until(first.db, nap.id, (v) => step(v, 'nap').state === 'waiting');
    await until(first.db, approve.id, (v) => step(v, 'approval').state === 'waiting');
    await first.stop();

    const second = await startEngine({ backend: 'pg', url: tdb.url, templates: TEMPLATES, handlers: HANDLERS, namespaces: ['waits_t'] });
    try {
      await second.orchestrators[0]!.signalStep({ task: approve.id, step: 'approval' }, { approved: true }, 'test');
      for (const id of [nap.id, approve.id]) expect(await second.orchestrators[0]!.waitForTask(id, 20_000)).toBe(true);
      const napped = (await getTaskView(second.db, nap.id))!;
      const approved = (await getTaskView(second.db, approve.id))!;
      expect([napped.state, approved.state]).toEqual(['complete', 'complete']);
      expect(step(approved, 'act').result).toEqual({ saw: { approval: { approved: true } } });
    } finally {
      await second.stop();
    }
  });
});
