/**
 * POST /v1/tasks/batch (issue 20) on a real PostgreSQL, with steps dispatched
 * through each messaging backend: every valid item created in one commit and
 * run, per-item errors with the item's index while the rest are created, a
 * replayed batch answering the same ids and creating nothing, and the limit.
 * Items with a delayed start (run_at, delay) and items whose root steps wait
 * (sleep, wait) are created exactly as POST /v1/tasks creates them (issue 19).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Backend, type Engine } from '../support/engine.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { parseTemplate } from '../../src/core/template/parse.js';

const BATCH_LIMIT = 300;
const single = (n: number, key?: string) => ({
  namespace: 'e2e_single',
  name: 'one_step',
  context: { even_number: n },
  ...(key ? { idempotency_key: key } : {}),
});
/** Templates whose tasks start later or whose root steps wait. */
const TEMPLATES = [
  parseTemplate(
    'namespace: batch_t\nname: later\nversion: 1.0.0\nsteps:\n  - { name: first, handler: bt.stamp }\n  - { name: second, handler: bt.echo, depends_on: [first] }',
    'later.yaml',
  ),
  parseTemplate(
    'namespace: batch_t\nname: asks\nversion: 1.0.0\nsteps:\n' +
      '  - { name: ask, type: wait, payload_schema: { type: object, required: [approved], properties: { approved: { type: boolean } } } }\n' +
      '  - { name: act, handler: bt.echo, depends_on: [ask] }',
    'asks.yaml',
  ),
  parseTemplate(
    'namespace: batch_t\nname: naps\nversion: 1.0.0\nsteps:\n  - { name: nap, type: sleep, duration: 1s }\n  - { name: after, handler: bt.echo, depends_on: [nap] }',
    'naps.yaml',
  ),
];
const HANDLERS = {
  'bt.stamp': () => ({ at: new Date().toISOString() }),
  'bt.echo': (step: { dependency_results: Record<string, unknown> }) => ({ saw: step.dependency_results }),
};
const linear = (n: number) => ({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: n } });

describe.each<Backend>(['pg', 'rabbitmq'])('POST /v1/tasks/batch (%s)', (backend) => {
  let tdb: TestDatabase;
  let engine: Engine;
  let api: FastifyInstance;

  const counts = async () =>
    (
      await tdb.db.query<{ tasks: number; steps: number; transitions: number }>(
        `SELECT (SELECT count(*) FROM weft.tasks)::int AS tasks, (SELECT count(*) FROM weft.steps)::int AS steps,
                (SELECT count(*) FROM weft.step_transitions)::int + (SELECT count(*) FROM weft.task_transitions)::int AS transitions`,
      )
    ).rows[0]!;
  const postBatch = (tasks: unknown) => api.inject({ method: 'POST', url: '/v1/tasks/batch', payload: { tasks } as object });
  /** Wait for every task, then their states and last step results, by id. */
  const ended = async (ids: string[]) => {
    for (const id of ids) expect(await engine.orchestrators[0]!.waitForTask(id, 60_000)).toBe(true);
    const { rows } = await tdb.db.query<{ id: string; state: string; result: unknown }>(
      `SELECT t.id, t.state, (SELECT s.result FROM weft.steps s WHERE s.task_id = t.id ORDER BY s.name DESC LIMIT 1) AS result
         FROM weft.tasks t WHERE t.id = ANY($1::uuid[])`,
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r]));
  };

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({
      backend,
      url: tdb.url,
      namespaces: ['e2e_single', 'e2e_linear', 'batch_t'],
      concurrency: 32,
      templates: TEMPLATES,
      handlers: HANDLERS,
    });
    api = buildApi({
      orchestrator: engine.orchestrators[0]!,
      db: engine.db,
      bus: new PgMessageBus(engine.db, silentLogger()),
      log: silentLogger(),
      ui: false,
      limits: { taskBatchLimit: BATCH_LIMIT },
    });
    await api.ready();
  });
  afterAll(async () => {
    await api?.close();
    await engine?.stop();
    await tdb?.drop();
  });

  it('creates every task of a batch in one call and runs them all; replaying it answers the same ids and creates nothing', async () => {
    const tasks = [
      ...Array.from({ length: BATCH_LIMIT - 10 }, (_, i) => single(2 * ((i % 50) + 1), `batch-${backend}-${i}`)),
      ...Array.from({ length: 10 }, (_, i) => linear(2 * ((i % 2) + 1))),
    ];
    const before = await counts();
    const res = await postBatch(tasks);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect([body.created, body.existing, body.failed]).toEqual([BATCH_LIMIT, 0, 0]);
    expect(body.results.map((r: { index: number }) => r.index)).toEqual(tasks.map((_, i) => i));
    expect(body.results.every((r: { outcome: string; id: string }) => r.outcome === 'created' && /^[0-9a-f-]{36}$/.test(r.id))).toBe(true);
    const ids: string[] = body.results.map((r: { id: string }) => r.id);
    expect(new Set(ids).size).toBe(BATCH_LIMIT);
    // Per task: its 2 transitions; per single step 2, per linear task 2 + 3 (first step enqueued, three pending).
    const after = await counts();
    expect(after.tasks - before.tasks).toBe(BATCH_LIMIT);
    expect(after.steps - before.steps).toBe(BATCH_LIMIT - 10 + 40);

    const states = await ended(ids);
    tasks.forEach((t, i) => {
      const n = t.context.even_number;
      const want = t.namespace === 'e2e_single' ? n ** 2 : n ** 16;
      expect(states.get(ids[i]!)).toMatchObject({ state: 'complete', result: want });
    });

    const settled = await counts();
    const replay = await postBatch(tasks);
    expect(replay.statusCode).toBe(200);
    const again = replay.json();
    // Keyed items answer their task; the 10 without a key are new tasks, as a repeated POST /v1/tasks without one would be.
    expect([again.created, again.existing, again.failed]).toEqual([10, BATCH_LIMIT - 10, 0]);
    for (let i = 0; i < BATCH_LIMIT - 10; i++) expect(again.results[i]).toEqual({ index: i, id: ids[i], outcome: 'existing' });
    expect((await counts()).tasks).toBe(settled.tasks + 10);
    await ended(again.results.slice(BATCH_LIMIT - 10).map((r: { id: string }) => r.id));
  });

  it('answers each bad item with its index and error, and creates the others', async () => {
    // Nothing valid at all: every item answered, nothing written.
    const none = await postBatch([{ name: 'one_step' }, { namespace: 'e2e_single', name: 'nope' }]);
    expect(none.json()).toMatchObject({ created: 0, existing: 0, failed: 2 });
    const taken = (await postBatch([single(4, `taken-${backend}`)])).json().results[0].id as string;
    const tasks = [
      single(2),
      { namespace: 'e2e_single', name: 'nope', context: {} },
      single(7),
      { name: 'one_step', context: { even_number: 2 } },
      { ...single(2), contxt: {} },
      single(6, `taken-${backend}`),
      single(8, `taken-${backend}`),
      single(10, `fresh-${backend}`),
      single(10, `fresh-${backend}`),
      'not an object',
      { ...single(2), context: { even_number: 2, note: 'a\u0000b' } },
    ];
    const before = await counts();
    const res = await postBatch(tasks);
    expect(res.statusCode).toBe(200);
    const { results, created, existing, failed } = res.json();
    expect([created, existing, failed]).toEqual([2, 1, 8]);
    const error = (i: number) => results[i].error as { code: string; message: string; path?: string };
    expect(results[0]).toMatchObject({ index: 0, outcome: 'created' });
    expect(error(1)).toEqual({ code: 'not_found', message: 'no template e2e_single/nope is registered; namespace e2e_single has: one_step@1.0.0' });
    expect(error(2)).toMatchObject({ code: 'invalid_input', path: 'context.even_number' });
    expect(error(2).message).toContain('multiple of 2');
    expect(error(3)).toEqual({ code: 'invalid_input', path: 'namespace', message: 'namespace must be a non-empty string, got nothing' });
    expect(error(4)).toMatchObject({ code: 'invalid_input', path: 'contxt', message: expect.stringContaining('unknown field "contxt"') });
    for (const i of [5, 6]) {
      expect(results[i].error).toMatchObject({ code: 'conflict', task_id: taken, differs: ['context'] });
      expect(error(i).message).toContain(`idempotency_key "taken-${backend}" already exists (${taken})`);
    }
    // The same key twice in one batch: the second item answers the first's task.
    expect(results[7]).toMatchObject({ index: 7, outcome: 'created' });
    expect(results[8]).toEqual({ index: 8, id: results[7].id, outcome: 'existing' });
    expect(error(9)).toMatchObject({ code: 'invalid_input', message: expect.stringContaining('an item must be an object') });
    expect(error(10)).toMatchObject({ code: 'invalid_input', path: 'context.note', message: expect.stringContaining('U+0000') });
    for (const r of results) expect(r.index).toBe(results.indexOf(r));
    expect((await counts()).tasks - before.tasks).toBe(2);
    const states = await ended([results[0].id, results[7].id]);
    expect([...states.values()].map((s) => s.state)).toEqual(['complete', 'complete']);
  });

  it('refuses a batch over WEFT_TASK_BATCH_LIMIT, or an empty one, creating nothing', async () => {
    const before = await counts();
    const over = await postBatch(Array.from({ length: BATCH_LIMIT + 1 }, () => single(2)));
    expect(over.statusCode).toBe(400);
    expect(over.json().error).toMatchObject({ code: 'invalid_input', path: 'tasks', message: `tasks must NOT have more than ${BATCH_LIMIT} items` });
    const empty = await postBatch([]);
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error.message).toBe('tasks must NOT have fewer than 1 items');
    expect(await counts()).toEqual(before);
  });
  /** A task's state and its steps' states, transitions and waiting fields, by step name. */
  const stepsOf = async (id: string) => {
    const { rows } = await tdb.db.query<{
      task_state: string;
      run_at: Date | null;
      name: string;
      state: string;
      wait: unknown;
      run_after: Date | null;
      signal_token: string | null;
      result: any;
      transitions: Array<{ from: string | null; to: string; at: string; metadata: any }>;
    }>(
      `SELECT t.state AS task_state, t.run_at, s.name, s.state, s.wait, s.run_after, s.signal_token, s.result,
              (SELECT json_agg(json_build_object('from', x.from_state, 'to', x.to_state, 'at', x.at, 'metadata', x.metadata) ORDER BY x.seq)
                 FROM weft.step_transitions x WHERE x.step_id = s.id) AS transitions
         FROM weft.tasks t JOIN weft.steps s ON s.task_id = t.id WHERE t.id = $1 ORDER BY s.name`,
      [id],
    );
    return { state: rows[0]!.task_state, runAt: rows[0]!.run_at, steps: new Map(rows.map((r) => [r.name, r])) };
  };

  it('holds a delayed item (run_at or delay) pending, starting no step before its time, and answers its run_at', async () => {
    const key = `delayed-${backend}`;
    const far = '2099-01-01T00:00:00.000Z';
    const tasks = [
      { namespace: 'batch_t', name: 'later', delay: '2s', idempotency_key: key },
      { namespace: 'batch_t', name: 'later' },
      { namespace: 'batch_t', name: 'later', run_at: far },
      { namespace: 'batch_t', name: 'later', delay: 'soon' },
      { namespace: 'batch_t', name: 'later', run_at: '2099-01-01 noon' },
      { namespace: 'batch_t', name: 'later', run_at: far, delay: '1s' },
    ];
    const res = await postBatch(tasks);
    expect(res.statusCode).toBe(200);
    const { results, created, failed } = res.json();
    expect([created, failed]).toEqual([3, 3]);
    const runAt = Date.parse(results[0].run_at);
    expect(runAt).toBeGreaterThan(Date.now());
    expect(results[1]).toEqual({ index: 1, id: expect.any(String), outcome: 'created' });
    expect(results[2]).toMatchObject({ outcome: 'created', run_at: far });
    expect(results[3].error).toMatchObject({ code: 'invalid_input', path: 'delay', message: expect.stringContaining('delay "soon" is not a duration') });
    expect(results[4].error).toMatchObject({ code: 'invalid_input', path: 'run_at', message: expect.stringContaining('not an RFC 3339 time') });
    expect(results[5].error).toMatchObject({ code: 'invalid_input', path: 'run_at', message: expect.stringContaining('give run_at or delay, not both') });

    // Before its time: pending, every step pending with nothing but its first transition, nothing dispatched.
    for (const i of [0, 2]) {
      const held = await stepsOf(results[i].id);
      expect(held.state).toBe('pending');
      expect(held.runAt!.getTime()).toBe(Date.parse(results[i].run_at));
      for (const s of held.steps.values()) expect([s.state, s.transitions.length]).toEqual(['pending', 1]);
    }
    const { rows: taskRows } = await tdb.db.query<{ seq: number; to_state: string; metadata: any }>(
      'SELECT seq, to_state, metadata FROM weft.task_transitions WHERE task_id = $1 ORDER BY seq',
      [results[0].id],
    );
    expect(taskRows).toEqual([{ seq: 1, to_state: 'pending', metadata: { run_at: expect.any(String) } }]);
    // Replaying the keyed item answers its task and its run_at.
    const replay = (await postBatch([tasks[0]])).json();
    expect(replay.results[0]).toEqual({ index: 0, id: results[0].id, outcome: 'existing', run_at: results[0].run_at });

    // The immediate item runs now; the delayed one starts at its time, not before.
    const states = await ended([results[1].id, results[0].id]);
    expect(states.get(results[0].id)!.state).toBe('complete');
    const started = await stepsOf(results[0].id);
    const enqueued = started.steps.get('first')!.transitions.find((t) => t.to === 'enqueued' || t.to === 'running')!;
    expect(Date.parse(enqueued.at)).toBeGreaterThanOrEqual(runAt);
    expect((await stepsOf(results[2].id)).state).toBe('pending');
  });

  it('creates an item whose root step is a wait or a sleep as POST /v1/tasks does: waiting, with its deadline and callback token; a signal completes it', async () => {
    const asked = Date.now();
    const res = await postBatch([
      { namespace: 'batch_t', name: 'asks' },
      { namespace: 'batch_t', name: 'naps' },
    ]);
    expect(res.json()).toMatchObject({ created: 2, failed: 0 });
    const [asks, naps] = res.json().results.map((r: { id: string }) => r.id) as [string, string];
    const single = await api.inject({ method: 'POST', url: '/v1/tasks', payload: { namespace: 'batch_t', name: 'asks' } });
    expect(single.statusCode).toBe(201);

    const batchAsk = (await stepsOf(asks)).steps.get('ask')!;
    const singleAsk = (await stepsOf(single.json().id)).steps.get('ask')!;
    for (const ask of [batchAsk, singleAsk]) {
      expect(ask).toMatchObject({ state: 'waiting', run_after: null, wait: singleAsk.wait, signal_token: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(ask.wait).not.toBeNull();
      expect(ask.transitions.map((t) => [t.from, t.to])).toEqual([
        [null, 'pending'],
        ['pending', 'waiting'],
      ]);
    }
    expect(batchAsk.signal_token).not.toBe(singleAsk.signal_token);
    const nap = (await stepsOf(naps)).steps.get('nap')!;
    expect(nap.state === 'waiting' || nap.state === 'complete').toBe(true);
    expect(nap.transitions[1]).toMatchObject({ from: 'pending', to: 'waiting', metadata: { until: expect.any(String) } });
    const due = Date.parse(nap.transitions[1]!.metadata.until);
    expect(due).toBeGreaterThanOrEqual(asked + 1_000);

    const wrong = await api.inject({ method: 'POST', url: `/v1/tasks/${asks}/steps/ask/signal`, payload: { approved: 'yes' } });
    expect(wrong.statusCode).toBe(400);
    const signalled = await api.inject({ method: 'POST', url: `/v1/callbacks/${batchAsk.signal_token}`, payload: { approved: true } });
    expect(signalled.statusCode).toBe(200);
    const states = await ended([asks, naps]);
    expect(states.get(asks)).toMatchObject({ state: 'complete' });
    const done = await stepsOf(asks);
    expect(done.steps.get('act')!.result).toEqual({ saw: { ask: { approved: true } } });
    const slept = (await stepsOf(naps)).steps.get('nap')!;
    expect(Date.parse(slept.result.slept_until)).toBe(due);
    expect(Date.parse(slept.transitions.find((t) => t.from === 'waiting')!.at)).toBeGreaterThanOrEqual(due);
    await api.inject({ method: 'POST', url: `/v1/tasks/${single.json().id}/steps/ask/signal`, payload: { approved: false } });
  });
});
