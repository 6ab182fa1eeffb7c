/**
 * The endpoints the dashboard reads: task list, cancel/retry, the audit trail (history), workers, stats,
 * template versions, bench results, server-sent events.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { buildApi } from '../../src/api/server.js';
import { catalogRoutes } from '../../src/api/routes/catalog.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { idPrefixRange } from '../../src/store/task-list.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { PermanentError } from '../../src/worker/sdk.js';
import { TaskEvents } from '../../src/orchestration/task-events.js';
import type { TaskStartEvent } from '../../src/orchestration/live-events.js';
import { openDatabase } from '../../src/store/database.js';
import Fastify from 'fastify';
import { followEvents } from '../support/sse.js';

/** Templates of the history tests: a step that fails once and is retried after 50 ms, one that always fails, one that waits to be cancelled. */
const historyTemplates = [
  parseTemplate(
    'namespace: api_hist\nname: flaky\nversion: 1.0.0\nsteps:\n' +
      '  - { name: first, handler: hist.ok }\n' +
      '  - { name: wobbly, handler: hist.flaky, depends_on: [first], retry: { max_attempts: 3, backoff: fixed, base_ms: 50, max_ms: 50 } }',
    'flaky.yaml',
  ),
  parseTemplate(
    'namespace: api_hist\nname: broken\nversion: 1.0.0\nsteps:\n  - { name: first, handler: hist.ok }\n  - { name: boom, handler: hist.broken, depends_on: [first] }',
    'broken.yaml',
  ),
  parseTemplate('namespace: api_hist\nname: slow\nversion: 1.0.0\nsteps:\n  - { name: nap, handler: hist.slow }', 'slow.yaml'),
];
const historyHandlers = {
  'hist.ok': () => ({ ok: true }),
  'hist.flaky': (step: { attempt: number }) => {
    if (step.attempt === 1) throw new Error('first try fails');
    return { attempt: step.attempt };
  },
  'hist.broken': () => {
    throw new PermanentError('the ledger is closed for the night');
  },
  'hist.slow': async (step: { signal?: AbortSignal }) => {
    await new Promise((r) => {
      const timer = setTimeout(r, 30_000);
      step.signal?.addEventListener('abort', () => (clearTimeout(timer), r(undefined)));
    });
    return {};
  },
};

describe('dashboard endpoints', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  let api: FastifyInstance;
  let base: string;
  const ids: string[] = [];
  const get = (url: string) => api.inject({ method: 'GET', url });
  const post = (url: string, payload?: unknown) => api.inject({ method: 'POST', url, payload: payload as object });

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({
      backend: 'pg',
      url: tdb.url,
      namespaces: ['e2e_linear', 'e2e_diamond', 'api_hist'],
      templates: historyTemplates,
      handlers: historyHandlers as never,
    });
    api = buildApi({ orchestrator: engine.orchestrators[0]!, db: engine.db, bus: new PgMessageBus(engine.db, silentLogger()), log: silentLogger(), ui: false });
    await api.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
    for (let i = 0; i < 5; i++) ids.push((await engine.run('e2e_linear', 'mathematical_sequence', { even_number: 2 })).id);
    ids.push((await engine.run('e2e_diamond', 'diamond_pattern', { even_number: 4 })).id);
  });
  afterAll(async () => {
    await api?.close();
    await engine?.stop();
    await tdb?.drop();
  });

  it('lists tasks newest first in cursor pages, with counts by state beside the filters', async () => {
    const first = (await get('/v1/tasks?limit=4')).json();
    expect(first.tasks.map((t: { id: string }) => t.id)).toEqual([...ids].reverse().slice(0, 4));
    expect(first.tasks[0]).toMatchObject({ namespace: 'e2e_diamond', state: 'complete', steps: 4, steps_complete: 4, steps_failed: 0 });
    expect(first.tasks[0].duration_ms).toBeGreaterThan(0);
    expect(first.counts).toEqual({ pending: 0, running: 0, complete: 6, error: 0, cancelled: 0 });
    const second = (await get(`/v1/tasks?limit=4&cursor=${first.next_cursor}`)).json();
    expect(second.tasks.map((t: { id: string }) => t.id)).toEqual([...ids].reverse().slice(4));
    expect(second.next_cursor).toBeNull();

    const linear = (await get('/v1/tasks?namespace=e2e_linear&name=mathematical_sequence')).json();
    expect(linear.tasks).toHaveLength(5);
    expect(linear.counts.complete).toBe(5);
    expect((await get('/v1/tasks?state=error')).json()).toMatchObject({ tasks: [], counts: { complete: 6 } });
    const byPrefix = (await get(`/v1/tasks?q=${ids[2]!.slice(0, 13)}`)).json();
    expect(byPrefix.tasks.map((t: { id: string }) => t.id)).toContain(ids[2]);
    expect((await get(`/v1/tasks?q=${ids[2]}`)).json().tasks.map((t: { id: string }) => t.id)).toEqual([ids[2]]);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect((await get(`/v1/tasks?created_after=${future}`)).json().tasks).toEqual([]);
    expect((await get(`/v1/tasks?created_before=${future}`)).json().tasks).toHaveLength(6);
  });

  it.each([
    ['/v1/tasks?state=done', 'state', 'state must be one of pending, running, complete, error, cancelled, got "done"'],
    ['/v1/tasks?limit=0', 'limit', 'limit must be an integer between 1 and 500, got "0"'],
    ['/v1/tasks?cursor=abc', 'cursor', 'cursor "abc" is not a cursor this API returned'],
    ['/v1/tasks?created_after=yesterday', 'created_after', 'created_after must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z, got "yesterday"'],
    ['/v1/stats?window_s=100&bucket_s=7', 'bucket_s', 'window_s (100) must be a multiple of bucket_s (7) and at most 1000 buckets long'],
  ])('answers 400 naming the parameter for %s', async (url, path, message) => {
    const res = await get(url);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toEqual({ code: 'invalid_input', message, path, details: [] });
  });

  it('turns an id prefix into a primary-key range', () => {
    expect(idPrefixRange('01a2')).toEqual(['01a20000-0000-0000-0000-000000000000', '01a2ffff-ffff-ffff-ffff-ffffffffffff']);
    expect(idPrefixRange('01A22475-F5F0')).toEqual(['01a22475-f5f0-0000-0000-000000000000', '01a22475-f5f0-ffff-ffff-ffffffffffff']);
    expect(idPrefixRange('order-42')).toBeUndefined();
  });

  it('routes cancel and retry to the engine, checking the request first', async () => {
    expect((await post('/v1/tasks/42/cancel')).json().error).toMatchObject({ path: 'id', message: 'task id "42" is not a UUID' });
    const bad = await post(`/v1/tasks/${ids[0]}/retry`, { stp: 'x' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('must NOT have additional properties');
  });

  // Wait for the engine: cancelTask / retryTask in src/store/control.ts.
  it('answers 409 for cancelling an ended task and 404 for an unknown one', async () => {
    const { id } = await engine.orchestrators[0]!.createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 } });
    await engine.orchestrators[0]!.waitForTask(id, 20_000);
    const ended = await post(`/v1/tasks/${id}/cancel`);
    expect(ended.statusCode).toBe(409);
    expect(ended.json().error.message).toContain('complete');
    expect((await post('/v1/tasks/01a21e54-5be0-76be-97b1-9441a6c8e351/cancel')).statusCode).toBe(404);
  });
  it('refuses to retry a task that did not fail (409) and a step that does not exist (404)', async () => {
    const done = await post(`/v1/tasks/${ids[0]}/retry`);
    expect(done.statusCode).toBe(409);
    const noStep = await post(`/v1/tasks/${ids[0]}/retry`, { step: 'nope' });
    expect(noStep.statusCode).toBe(404);
  });

  it('lists registered processes, marking one whose heartbeat stopped', async () => {
    await engine.db.query(
      `INSERT INTO weft.processes (id, kind, runtime, host, pid, heartbeat_at, info) VALUES
         ('w-fresh', 'worker', 'python', 'h', 1, now(), '{"in_flight": 1}'),
         ('w-silent', 'worker', 'ruby', 'h', 2, now() - interval '30 seconds', '{}'),
         ('o-1', 'orchestrator', NULL, 'h', 3, now(), '{}')`,
    );
    const body = (await get('/v1/workers')).json();
    expect(body.stale_after_ms).toBe(5000);
    expect(body.workers.map((w: { id: string; stale: boolean }) => [w.id, w.stale])).toEqual(
      expect.arrayContaining([
        ['w-fresh', false],
        ['w-silent', true],
      ]),
    );
    expect(body.workers.find((w: { id: string }) => w.id === 'w-fresh').info).toEqual({ in_flight: 1 });
    expect(body.orchestrators.map((o: { id: string }) => o.id)).toContain('o-1');
    expect((await get('/v1/workers?stale_after_ms=60000')).json().workers.find((w: { id: string }) => w.id === 'w-silent').stale).toBe(false);
    await engine.db.query(`DELETE FROM weft.processes WHERE id IN ('w-fresh', 'w-silent', 'o-1')`);
  });

  it('reports steps per second, task latency percentiles and step phases over a window', async () => {
    const s = (await get('/v1/stats?window_s=300&bucket_s=10')).json();
    expect(s.buckets).toHaveLength(30);
    const finished = Object.entries(s.steps_per_s as Record<string, number[]>).map(([k, v]) => [k, v.reduce((a, b) => a + b, 0) * 10]);
    const { rows } = await engine.db.query<{ ns: string; steps: number; tasks: number }>(
      `SELECT t.namespace AS ns, count(*)::int AS steps, count(DISTINCT t.id)::int AS tasks FROM weft.steps s JOIN weft.tasks t ON t.id = s.task_id
        WHERE t.state = 'complete' GROUP BY 1`,
    );
    expect(Object.fromEntries(finished)).toEqual(Object.fromEntries(rows.map((r) => [`${r.ns}/native`, r.steps])));
    expect(s.task_latency['*'].n).toBe(rows.reduce((a, r) => a + r.tasks, 0));
    expect(s.task_latency.e2e_diamond.n).toBe(1);
    expect(s.task_latency['*'].p50).toBeGreaterThan(0);
    expect(typeof s.task_latency['*'].max).toBe('number');
    expect(s.step_phases.native.n).toBe(rows.reduce((a, r) => a + r.steps, 0));
    expect(s.queue_depth['step.e2e_linear.native']).toBe(0); // every task ended: no ready step waits
    expect(s.pool.total).toBeGreaterThan(0);
  });

  it('returns every version of a template with its definition, and 404 for an unknown one', async () => {
    const t = (await get('/v1/templates/e2e_linear/mathematical_sequence')).json();
    expect(t.versions.map((v: { version: string }) => v.version)).toEqual(['1.0.0']);
    expect(t.versions[0].definition.steps[1].depends_on).toEqual(['linear_step_1']);
    const missing = await get('/v1/templates/e2e_linear/nope');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.message).toBe('no template e2e_linear/nope is registered; GET /v1/templates lists them');
  });

  it('serves the latest bench document per backend and the latest bridge run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-bench-'));
    for (const [n, commit] of [
      ['2026-01-01T00-00-00Z-pg', 'old'],
      ['2026-02-01T00-00-00Z-pg', 'new'],
    ]) {
      mkdirSync(join(dir, n!));
      writeFileSync(join(dir, n!, 'percentiles.json'), JSON.stringify({ schema: 'weft-bench/1', backend: 'pg', git: { commit } }));
    }
    writeFileSync(join(dir, 'bridge-2026-01-01T00-00-00Z.json'), JSON.stringify({ cells: [] }));
    const app = Fastify();
    await app.register(catalogRoutes, { db: engine.db, benchDir: dir });
    const body = (await app.inject({ method: 'GET', url: '/v1/bench' })).json();
    expect(body.runs.pg).toMatchObject({ git: { commit: 'new' }, results_dir: '2026-02-01T00-00-00Z-pg' });
    expect(body.runs.rabbitmq).toBeUndefined();
    expect(body.bridge).toEqual({ cells: [], file: 'bridge-2026-01-01T00-00-00Z.json' });
    await app.close();
  });

  it("streams a task's step changes and its end, and every task end on /v1/events", async () => {
    const all = followEvents(`${base}/v1/events`, (evs) => evs.some((e) => e.event === 'task'));
    const { id } = await engine.orchestrators[0]!.createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 4 } });
    const one = await followEvents(`${base}/v1/tasks/${id}/events`, (evs) => evs.some((e) => e.event === 'task'));
    expect(one[0]).toEqual({ event: 'hello', data: { task_id: id, state: expect.any(String), live_steps: true } });
    const ended = one.find((e) => e.event === 'task');
    expect(ended?.data).toMatchObject({ kind: 'task', task_id: id, state: 'complete', namespace: 'e2e_linear', name: 'mathematical_sequence' });
    // Step changes arrive from the workers that make them (unless the task ended before the stream opened).
    if (one[0]!.data.state === 'running') {
      expect(one.filter((e) => e.event === 'step').map((e) => e.data.name)).toContain('linear_step_4');
    }
    const events = await all;
    expect(events.find((e) => e.event === 'task')?.data).toMatchObject({ kind: 'task', task_id: id, state: 'complete' });
    expect((await get('/v1/tasks/01a21e54-5be0-76be-97b1-9441a6c8e351/events')).statusCode).toBe(404);
  });
  it('streams every task start on /v1/events: a creation, then a retry naming who retried', async () => {
    const started = followEvents(`${base}/v1/events`, (evs) => evs.filter((e) => e.event === 'task_started').length >= 2);
    // The stream's subscription reaches the orchestrator before the task is created.
    await new Promise((r) => setTimeout(r, 300));
    const { id } = await engine.orchestrators[0]!.createTask({ namespace: 'api_hist', name: 'broken', context: {} });
    expect(await engine.orchestrators[0]!.waitForTask(id, 20_000)).toBe(true);
    expect((await post(`/v1/tasks/${id}/retry`)).statusCode).toBe(200);
    const events = await started;
    expect(events.filter((e) => e.event === 'task_started').map((e) => e.data)).toEqual([
      { kind: 'task_started', task_id: id, state: 'running', namespace: 'api_hist', name: 'broken', cause: 'created' },
      { kind: 'task_started', task_id: id, state: 'running', cause: 'retried', by: 'anonymous' },
    ]);
  });

  it('a task created to start later is told as pending, not running', async () => {
    const started = followEvents(`${base}/v1/events`, (evs) => evs.some((e) => e.event === 'task_started'));
    await new Promise((r) => setTimeout(r, 300));
    const { id } = await engine.orchestrators[0]!.createTask({ namespace: 'api_hist', name: 'broken', context: {}, delay: '1h' });
    const events = await started;
    expect(events.find((e) => e.event === 'task_started')?.data).toEqual({
      kind: 'task_started',
      task_id: id,
      state: 'pending',
      namespace: 'api_hist',
      name: 'broken',
      cause: 'created',
    });
    await engine.orchestrators[0]!.cancelTask(id, 'test');
  });

  it("tells a delayed task's start when its start time comes: running, cause start_time", async () => {
    const seen = followEvents(`${base}/v1/events`, (evs) => evs.filter((e) => e.event === 'task_started').length >= 2);
    await new Promise((r) => setTimeout(r, 300));
    const { id } = await engine.orchestrators[0]!.createTask({ namespace: 'api_hist', name: 'broken', context: {}, delay: '500ms' });
    const starts = (await seen).filter((e) => e.event === 'task_started').map((e) => e.data);
    expect(starts).toEqual([
      { kind: 'task_started', task_id: id, state: 'pending', namespace: 'api_hist', name: 'broken', cause: 'created' },
      { kind: 'task_started', task_id: id, state: 'running', cause: 'start_time' },
    ]);
    expect(await engine.orchestrators[0]!.waitForTask(id, 20_000)).toBe(true);
  });

  it('tells task starts only while some process watches the task list, learning of a watcher in another process', async () => {
    const log = silentLogger();
    // Two more "processes": each its own pool, so its own LISTEN connection (signals are per pool).
    const [poolA, poolB] = await Promise.all([openDatabase({ url: tdb.url, log, max: 2 }), openDatabase({ url: tdb.url, log, max: 2 })]);
    const [a, b] = [new TaskEvents(poolA, log), new TaskEvents(poolB, log)];
    try {
      await Promise.all([a.start(), b.start()]);
      expect(a.startsWatched()).toBe(false);
      expect(b.startsWatched()).toBe(false);
      const stop = b.onTaskStart(() => undefined);
      expect(b.startsWatched()).toBe(true);
      const deadline = Date.now() + 10_000;
      while (!a.startsWatched() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(a.startsWatched()).toBe(true);
      const event: TaskStartEvent = { task_id: ids[0]!, state: 'running', cause: 'created' };
      expect(a.startNotice(event)).toEqual({ channel: 'weft_task_start', payload: JSON.stringify(event) });
      stop();
    } finally {
      await Promise.all([a.close(), b.close()]);
      await Promise.all([poolA.close(), poolB.close()]);
    }
  });

  it('keeps a cancel reason with who cancelled, in the history, the task view and the list', async () => {
    const { id } = await engine.orchestrators[0]!.createTask({ namespace: 'api_hist', name: 'slow', context: {} });
    const res = await post(`/v1/tasks/${id}/cancel`, { reason: 'wrong customer selected' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id, state: 'cancelled' });
    const history = (await get(`/v1/tasks/${id}/history`)).json();
    const task = history.transitions.filter((t: { step: string | null }) => t.step === null);
    expect(task.map((t: { from: string; to: string }) => `${t.from}→${t.to}`)).toEqual(['null→pending', 'pending→running', 'running→cancelled']);
    expect(task[2].metadata).toEqual({ by: 'anonymous', reason: 'wrong customer selected' });
    expect(task[2].process).toMatch(/^orch0-/);
    expect(history.transitions.find((t: { step: string; to: string }) => t.step === 'nap' && t.to === 'cancelled').metadata).toEqual({
      reason: 'task cancelled',
      by: 'anonymous',
    });
    expect((await get(`/v1/tasks/${id}`)).json().error).toEqual({ reason: 'cancelled', by: 'anonymous', message: 'wrong customer selected' });
    const row = (await get('/v1/tasks?namespace=api_hist&name=slow')).json().tasks[0];
    expect(row).toMatchObject({ id, state: 'cancelled', error: { reason: 'cancelled', by: 'anonymous', message: 'wrong customer selected' } });
  });

  it.each([
    [{ reason: '' }, 'reason', 'reason must NOT have fewer than 1 characters'],
    [{ reason: 'x'.repeat(1001) }, 'reason', 'reason must NOT have more than 1000 characters'],
    [{ why: 'no' }, 'why', 'must NOT have additional properties'],
    [{ reason: 'nul \u0000 byte' }, 'reason', 'reason'],
  ])('refuses a bad cancel body %j naming the field, and cancels nothing', async (body, path, message) => {
    const { id } = await engine.orchestrators[0]!.createTask({ namespace: 'api_hist', name: 'slow', context: {} });
    const res = await post(`/v1/tasks/${id}/cancel`, body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('invalid_input');
    expect(res.json().error.message).toContain(message);
    if (path !== 'why') expect(res.json().error.path).toBe(path);
    expect((await get(`/v1/tasks/${id}`)).json().state).toBe('running');
    expect((await post(`/v1/tasks/${id}/cancel`)).statusCode).toBe(200);
  });

  it("answers a task's audit trail: a failed attempt with its retry delay, the retry that followed, one step's alone", async () => {
    const { id } = await engine.orchestrators[0]!.createTask({ namespace: 'api_hist', name: 'flaky', context: {} });
    expect(await engine.orchestrators[0]!.waitForTask(id, 20_000)).toBe(true);
    const all = (await get(`/v1/tasks/${id}/history`)).json();
    expect(all).toMatchObject({ task_id: id, truncated: false });
    const times = all.transitions.map((t: { at: string }) => Date.parse(t.at));
    expect(times).toEqual([...times].sort((x: number, y: number) => x - y));
    const wobbly = (await get(`/v1/tasks/${id}/history?step=wobbly`)).json();
    expect(wobbly.transitions.every((t: { step: string }) => t.step === 'wobbly')).toBe(true);
    // The first run starts from pending (claimed by the worker that finished its parent) or from the queue.
    const moves = wobbly.transitions.map((t: { from: string | null; to: string }) => `${t.from}→${t.to}`);
    expect(moves[0]).toBe('null→pending');
    expect(moves.slice(-5)).toEqual(
      ['→running', 'running→waiting_retry', 'waiting_retry→enqueued', 'enqueued→running', 'running→complete'].map((m, i) =>
        i === 0 ? expect.stringMatching(/(pending|enqueued)→running$/) : m,
      ),
    );
    const [failed, backoff, second] = wobbly.transitions.slice(-4, -1);
    // The delay the worker chose for the fixed 50 ms backoff (less the time already spent reporting).
    expect(failed.metadata).toMatchObject({ attempt: 1, delay_ms: expect.any(Number) });
    expect(failed.metadata.delay_ms).toBeLessThanOrEqual(50);
    expect(backoff.metadata).toEqual({ reason: 'backoff elapsed', next_attempt: 2 });
    expect(second.metadata).toEqual({ attempt: 2 });
    expect(wobbly.transitions[2].process).toBe(engine.workers[0]!.id);
    expect(all.transitions.filter((t: { step: string }) => t.step === 'wobbly')).toEqual(wobbly.transitions);

    const limited = (await get(`/v1/tasks/${id}/history?limit=3`)).json();
    expect(limited.truncated).toBe(true);
    expect(limited.transitions).toEqual(all.transitions.slice(0, 3));
    const none = await get(`/v1/tasks/${id}/history?step=nope`);
    expect(none.statusCode).toBe(404);
    expect(none.json().error.message).toBe(`task ${id} has no step "nope"`);
    expect((await get('/v1/tasks/01a21e54-5be0-76be-97b1-9441a6c8e351/history')).statusCode).toBe(404);
    expect((await get(`/v1/tasks/${id}/history?limit=0`)).json().error.path).toBe('limit');
  });

  it('says in the list where and why a task failed: the step, the error class and message', async () => {
    const { id } = await engine.orchestrators[0]!.createTask({ namespace: 'api_hist', name: 'broken', context: {} });
    expect(await engine.orchestrators[0]!.waitForTask(id, 20_000)).toBe(true);
    const row = (await get(`/v1/tasks?q=${id}`)).json().tasks[0];
    expect(row).toMatchObject({
      id,
      state: 'error',
      error: { step: 'boom', reason: 'permanent error', class: 'PermanentError', message: 'the ledger is closed for the night' },
    });
    const ok = (await get(`/v1/tasks?q=${ids[0]}`)).json().tasks[0];
    expect(ok.error).toBeNull();
  });
  it('checks a task request against its template, creating nothing: every problem with its path, or ok', async () => {
    const before = (await get('/v1/tasks?limit=1')).json().counts;
    const bad = await post('/v1/tasks/check', { namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 3, extra: 1 } });
    expect(bad.statusCode).toBe(200);
    expect(bad.json()).toEqual({
      namespace: 'e2e_linear',
      name: 'mathematical_sequence',
      version: '1.0.0',
      ok: false,
      problems: expect.arrayContaining([expect.objectContaining({ path: 'context.even_number', message: expect.stringContaining('context.even_number') })]),
    });
    const created = await post('/v1/tasks', { namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 3, extra: 1 } });
    expect(created.statusCode).toBe(400);
    // The same problems, in the same words, as creating the task would answer.
    expect(created.json().error.details).toEqual(bad.json().problems);
    expect((await post('/v1/tasks/check', { namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 4 } })).json()).toMatchObject({
      ok: true,
    });
    expect((await get('/v1/tasks?limit=1')).json().counts).toEqual(before);
    const unknown = await post('/v1/tasks/check', { namespace: 'e2e_linear', name: 'nope', context: {} });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.message).toContain('no template e2e_linear/nope is registered');
    const extra = await post('/v1/tasks/check', { namespace: 'e2e_linear', name: 'mathematical_sequence', idempotency_key: 'k' });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().error.path).toBe('idempotency_key');
  });
});
