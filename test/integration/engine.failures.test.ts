import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Backend, type Engine } from '../support/engine.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { PermanentError, decision } from '../../src/worker/sdk.js';
import { STEP_TRANSITIONS, type StepState } from '../../src/core/states.js';

const template = (name: string, steps: string) => parseTemplate(`namespace: t_fail\nname: ${name}\nversion: 1.0.0\nsteps:\n${steps}`, `${name}.yaml`);

const fast = 'retry: { max_attempts: 3, backoff: fixed, base_ms: 20, max_ms: 20 }';
const templates = [
  template('flaky', `  - { name: first, handler: test.flaky, ${fast} }\n  - { name: second, handler: test.echo, depends_on: [first] }`),
  template('permanent', `  - { name: first, handler: test.permanent, ${fast} }\n  - { name: second, handler: test.echo, depends_on: [first] }`),
  template('exhausted', `  - { name: first, handler: test.always_fails, retry: { max_attempts: 2, backoff: fixed, base_ms: 10, max_ms: 10 } }`),
  template('garbage', `  - { name: first, handler: test.garbage, ${fast} }`),
  template('bad_decision', `  - { name: choose, type: decision, handler: test.bad_decision }\n  - { name: a, handler: test.echo, depends_on: [choose] }`),
  template('slow', `  - { name: first, handler: test.slow_first_attempt, timeout_ms: 200, ${fast} }`),
  template('big', `  - { name: first, handler: test.context_size }`),
];

const handlers = {
  'test.echo': (step: { dependency_results: unknown }) => step.dependency_results,
  'test.flaky': (step: { attempt: number }) => {
    if (step.attempt < 3) throw new Error(`transient failure on attempt ${step.attempt}`);
    return { attempt: step.attempt };
  },
  'test.permanent': () => {
    throw new PermanentError('order_id is missing; this will never work');
  },
  'test.always_fails': () => {
    throw new TypeError('boom');
  },
  'test.garbage': () => new Map([['a', 1]]),
  'test.bad_decision': () => decision(['no_such_step']),
  'test.slow_first_attempt': async (step: { attempt: number }) => {
    if (step.attempt === 1) await new Promise((r) => setTimeout(r, 1_000));
    return { attempt: step.attempt };
  },
  'test.context_size': (step: { context: { blob: string } }) => ({ length: step.context.blob.length }),
};

/** Every step's transition history is a legal walk with contiguous seq numbers. */
async function expectLegalHistories(engine: Engine, taskId: string) {
  const { rows } = await engine.db.query<{ step_id: string; seq: number; from_state: StepState | null; to_state: StepState }>(
    'SELECT step_id, seq, from_state, to_state FROM weft.step_transitions WHERE task_id = $1 ORDER BY step_id, seq',
    [taskId],
  );
  const byStep = new Map<string, typeof rows>();
  for (const r of rows) byStep.set(r.step_id, [...(byStep.get(r.step_id) ?? []), r]);
  for (const history of byStep.values()) {
    history.forEach((r, i) => {
      expect(r.seq).toBe(i + 1);
      if (i === 0) expect([r.from_state, r.to_state]).toEqual([null, 'pending']);
      else {
        expect(r.from_state).toBe(history[i - 1]!.to_state);
        expect(STEP_TRANSITIONS[r.from_state!]).toContain(r.to_state);
      }
    });
  }
}

describe.each<Backend>(['pg', 'rabbitmq'])('failures, retries and bad handlers (%s)', (backend) => {
  let tdb: TestDatabase;
  let engine: Engine;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend, url: tdb.url, templates, handlers: handlers as never, namespaces: ['t_fail'] });
  });
  afterAll(async () => {
    await engine?.stop();
    await tdb?.drop();
  });

  it('a handler that fails twice then succeeds completes on attempt 3', async () => {
    const view = await engine.run('t_fail', 'flaky', {});
    expect(view.state).toBe('complete');
    const first = view.steps.find((s) => s.name === 'first')!;
    expect(first.attempts).toBe(3);
    expect(first.result).toEqual({ attempt: 3 });
    expect(first.error).toBeNull();
    const { rows } = await engine.db.query(`SELECT count(*)::int AS n FROM weft.step_transitions WHERE step_id = $1 AND to_state = 'waiting_retry'`, [
      first.id,
    ]);
    expect(rows[0].n).toBe(2);
    await expectLegalHistories(engine, view.id);
  });

  it('a permanent error fails the task at once, with the error visible and the rest cancelled', async () => {
    const view = await engine.run('t_fail', 'permanent', {});
    expect(view.state).toBe('error');
    const first = view.steps.find((s) => s.name === 'first')!;
    expect(first.state).toBe('error');
    expect(first.attempts).toBe(1);
    expect(first.error).toMatchObject({
      class: 'PermanentError',
      message: 'order_id is missing; this will never work',
      permanent: true,
      language: 'typescript',
    });
    expect((first.error as { backtrace: string[] }).backtrace.length).toBeGreaterThan(0);
    expect(view.steps.find((s) => s.name === 'second')!.state).toBe('cancelled');
    expect(view.error).toMatchObject({ step: 'first', reason: 'permanent error', error: { class: 'PermanentError' } });
    await expectLegalHistories(engine, view.id);
  });

  it('exhausting max_attempts fails the task and says so', async () => {
    const view = await engine.run('t_fail', 'exhausted', {});
    expect(view.state).toBe('error');
    expect(view.steps[0]!.attempts).toBe(2);
    expect(view.error).toMatchObject({ step: 'first', reason: 'attempts exhausted (2 of 2)', error: { class: 'TypeError', message: 'boom' } });
  });

  it('a handler returning something that is not JSON fails permanently, naming the handler', async () => {
    const view = await engine.run('t_fail', 'garbage', {});
    expect(view.state).toBe('error');
    expect(view.steps[0]!.attempts).toBe(1);
    expect(view.steps[0]!.error).toMatchObject({ class: 'InvalidReturn', permanent: true });
    expect((view.steps[0]!.error as { message: string }).message).toContain('handler "test.garbage" returned a value that is not JSON (a Map at $)');
  });

  it('a decision naming a step that is not its child fails the task with a DecisionError', async () => {
    const view = await engine.run('t_fail', 'bad_decision', {});
    expect(view.state).toBe('error');
    const choose = view.steps.find((s) => s.name === 'choose')!;
    expect(choose.error).toMatchObject({ class: 'DecisionError', permanent: true });
    expect((choose.error as { message: string }).message).toContain('no_such_step');
    expect(view.steps.map((s) => s.name)).toEqual(['choose']);
    await expectLegalHistories(engine, view.id);
  });

  it('a step past its timeout_ms is retried and completes', async () => {
    const view = await engine.run('t_fail', 'slow', {});
    expect(view.state).toBe('complete');
    expect(view.steps[0]!.attempts).toBe(2);
    const { rows } = await engine.db.query(`SELECT metadata FROM weft.step_transitions WHERE step_id = $1 AND to_state = 'waiting_retry'`, [view.steps[0]!.id]);
    expect(rows).toHaveLength(1);
  });

  it('a 10 MB context is stored and handed to the handler whole', async () => {
    const blob = 'x'.repeat(10 * 1024 * 1024);
    const view = await engine.run('t_fail', 'big', { blob });
    expect(view.state).toBe('complete');
    expect(view.steps[0]!.result).toEqual({ length: blob.length });
  });
});
