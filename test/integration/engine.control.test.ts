/**
 * Cancel and retry (weft.cancel_task / weft.retry_task, migrations/004) on a
 * real engine: what an operator sees and what the audit trail keeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Backend, type Engine } from '../support/engine.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { PermanentError } from '../../src/worker/sdk.js';
import { STEP_TRANSITIONS, TASK_TRANSITIONS, type StepState, type TaskState } from '../../src/core/states.js';
import { getTaskView, type TaskView } from '../../src/store/tasks.js';
import { ConflictError, NotFoundError } from '../../src/shared/errors.js';

const template = (name: string, steps: string) => parseTemplate(`namespace: t_control\nname: ${name}\nversion: 1.0.0\nsteps:\n${steps}`, `${name}.yaml`);

const templates = [
  template(
    'blocked',
    '  - { name: first, handler: test.blocked }\n  - { name: second, handler: test.echo, depends_on: [first] }\n  - { name: third, handler: test.echo, depends_on: [second] }',
  ),
  template(
    'gated',
    '  - { name: first, handler: test.echo }\n  - { name: second, handler: test.gate, depends_on: [first], retry: { max_attempts: 2, backoff: fixed, base_ms: 10, max_ms: 10 } }\n  - { name: third, handler: test.echo, depends_on: [second] }',
  ),
];

/** A handler that waits until the test lets it go; `started` counts its runs. */
const blocker = {
  started: 0,
  release: () => {},
  gate: Promise.resolve(),
  reset() {
    this.started = 0;
    this.gate = new Promise<void>((r) => (this.release = r));
  },
};
/** test.gate fails for good until `open`. */
const gate = { open: false };

const handlers = {
  'test.echo': (step: { step_name: string; dependency_results: Record<string, unknown> }) => ({
    step: step.step_name,
    after: Object.keys(step.dependency_results),
  }),
  'test.blocked': async () => {
    blocker.started++;
    await blocker.gate;
    return { released: true };
  },
  'test.gate': () => {
    if (!gate.open) throw new PermanentError('the gate is closed');
    return { through: true };
  },
};

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every step's and the task's history is a legal walk with contiguous seq numbers. */
async function expectLegalHistories(engine: Engine, taskId: string) {
  const { rows: steps } = await engine.db.query<{ step_id: string; seq: number; from_state: StepState | null; to_state: StepState }>(
    'SELECT step_id, seq, from_state, to_state FROM weft.step_transitions WHERE task_id = $1 ORDER BY step_id, seq',
    [taskId],
  );
  const byStep = new Map<string, typeof steps>();
  for (const r of steps) byStep.set(r.step_id, [...(byStep.get(r.step_id) ?? []), r]);
  for (const history of byStep.values()) {
    history.forEach((r, i) => {
      expect(r.seq).toBe(i + 1);
      if (i > 0) {
        expect(r.from_state).toBe(history[i - 1]!.to_state);
        expect(STEP_TRANSITIONS[r.from_state!]).toContain(r.to_state);
      }
    });
  }
  const { rows: task } = await engine.db.query<{ seq: number; from_state: TaskState | null; to_state: TaskState }>(
    'SELECT seq, from_state, to_state FROM weft.task_transitions WHERE task_id = $1 ORDER BY seq',
    [taskId],
  );
  task.forEach((r, i) => {
    expect(r.seq).toBe(i + 1);
    if (i > 0) {
      expect(r.from_state).toBe(task[i - 1]!.to_state);
      expect(TASK_TRANSITIONS[r.from_state!]).toContain(r.to_state);
    }
  });
  return { steps, task };
}

describe.each<Backend>(['pg', 'rabbitmq'])('cancel and retry (%s)', (backend) => {
  let tdb: TestDatabase;
  let engine: Engine;
  const view = async (id: string) => (await getTaskView(engine.db, id)) as TaskView;
  const step = (v: TaskView, name: string) => v.steps.find((s) => s.name === name)!;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend, url: tdb.url, templates, handlers: handlers as never, namespaces: ['t_control'] });
  });
  afterAll(async () => {
    blocker.release();
    await engine?.stop();
    await tdb?.drop();
  });

  it('cancel: the running step ends cancelled, the rest never start, waiters hear at once, a late result is dropped', async () => {
    blocker.reset();
    const orchestrator = engine.orchestrators[0]!;
    const { id } = await orchestrator.createTask({ namespace: 't_control', name: 'blocked' });
    await until(
      'the first step to run',
      () => view(id),
      (v) => step(v, 'first').state === 'running',
    );

    const waiting = orchestrator.waitForTask(id, 30_000);
    expect(await orchestrator.cancelTask(id, 'test:operator')).toEqual({ state: 'cancelled', interrupted: 1 });
    expect(await waiting).toBe(true);

    const cancelled = await view(id);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.error).toMatchObject({ reason: 'cancelled', by: 'test:operator' });
    expect(cancelled.steps.map((s) => [s.name, s.state])).toEqual([
      ['first', 'cancelled'],
      ['second', 'cancelled'],
      ['third', 'cancelled'],
    ]);

    // The handler's result comes after the cancel: the worker drops it and frees the slot.
    blocker.release();
    await until(
      'the worker to let go of the step',
      async () => engine.workers.reduce((n, w) => n + w.inFlight(), 0),
      (n) => n === 0,
    );
    const after = await view(id);
    expect(step(after, 'first').state).toBe('cancelled');
    expect(step(after, 'first').result ?? null).toBeNull();
    const { steps, task } = await expectLegalHistories(engine, id);
    expect(steps.filter((r) => r.to_state === 'running')).toHaveLength(1); // only `first` ever ran
    expect(task.at(-1)).toMatchObject({ from_state: 'running', to_state: 'cancelled' });

    await expect(orchestrator.cancelTask(id, 'test')).rejects.toThrow(ConflictError);
    await expect(orchestrator.cancelTask(id, 'test')).rejects.toThrow(`task ${id} has already ended (cancelled)`);
    await expect(orchestrator.cancelTask('01a21e54-5be0-76be-97b1-9441a6c8e351', 'test')).rejects.toThrow(NotFoundError);
  });

  it('retry: a failed task runs again from its failed step with a fresh budget, keeping every earlier error', async () => {
    gate.open = false;
    const orchestrator = engine.orchestrators[0]!;
    const failed = await engine.run('t_control', 'gated', {});
    expect(failed.state).toBe('error');
    expect(failed.steps.map((s) => [s.name, s.state])).toEqual([
      ['first', 'complete'],
      ['second', 'error'],
      ['third', 'cancelled'],
    ]);
    await expect(orchestrator.retryTask(failed.id, { step: 'first', by: 'test' })).rejects.toThrow('step first of task');
    await expect(orchestrator.retryTask(failed.id, { step: 'nope', by: 'test' })).rejects.toThrow(NotFoundError);

    gate.open = true;
    expect(await orchestrator.retryTask(failed.id, { by: 'test:operator' })).toEqual({ state: 'running', enqueued: 1 });
    expect(await orchestrator.waitForTask(failed.id, 30_000)).toBe(true);
    const done = await view(failed.id);
    expect(done.state).toBe('complete');
    expect(done.error ?? null).toBeNull();
    expect(step(done, 'first').attempts).toBe(1); // not run again
    expect(step(done, 'second')).toMatchObject({ state: 'complete', attempts: 2, result: { through: true } });
    expect(step(done, 'second').errors).toEqual([expect.objectContaining({ class: 'PermanentError', message: 'the gate is closed', attempt: 1 })]);
    expect(step(done, 'third')).toMatchObject({ state: 'complete', result: { step: 'third', after: ['second'] } });
    const { task } = await expectLegalHistories(engine, failed.id);
    expect(task.map((r) => r.to_state)).toEqual(['pending', 'running', 'error', 'running', 'complete']);

    await expect(orchestrator.retryTask(failed.id, { by: 'test' })).rejects.toThrow(`task ${failed.id} is complete`);
  });

  it('retry of one named step, and of a cancelled task: it resumes from where it stopped', async () => {
    gate.open = false;
    const orchestrator = engine.orchestrators[0]!;
    const failed = await engine.run('t_control', 'gated', {});
    gate.open = true;
    expect(await orchestrator.retryTask(failed.id, { step: 'second', by: 'test' })).toEqual({ state: 'running', enqueued: 1 });
    expect(await orchestrator.waitForTask(failed.id, 30_000)).toBe(true);
    expect((await view(failed.id)).state).toBe('complete');

    blocker.reset();
    const { id } = await orchestrator.createTask({ namespace: 't_control', name: 'blocked' });
    await until(
      'the first step to run',
      () => view(id),
      (v) => step(v, 'first').state === 'running',
    );
    await orchestrator.cancelTask(id, 'test');
    blocker.release();
    expect(await orchestrator.retryTask(id, { by: 'test' })).toEqual({ state: 'running', enqueued: 1 });
    expect(await orchestrator.waitForTask(id, 30_000)).toBe(true);
    const resumed = await view(id);
    expect(resumed.state).toBe('complete');
    expect(step(resumed, 'first')).toMatchObject({ state: 'complete', attempts: 2, result: { released: true } });
    expect(blocker.started).toBe(2);
    await expectLegalHistories(engine, id);
  });
});
