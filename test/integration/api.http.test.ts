import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { Database } from '../../src/store/database.js';

describe('HTTP API', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  let api: FastifyInstance;

  const counts = async () => {
    const { rows } = await tdb.db.query(
      `SELECT (SELECT count(*) FROM weft.tasks)::int AS tasks, (SELECT count(*) FROM weft.steps)::int AS steps,
              (SELECT count(*) FROM weft.step_transitions WHERE seq <= 2)::int AS initial_transitions`,
    );
    return rows[0];
  };
  const post = (url: string, payload: unknown) => api.inject({ method: 'POST', url, payload: payload as object });

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend: 'pg', url: tdb.url, namespaces: ['e2e_linear'] });
    api = buildApi({ orchestrator: engine.orchestrators[0]!, db: engine.db, bus: new PgMessageBus(engine.db, silentLogger()), log: silentLogger() });
    await api.ready();
  });
  afterAll(async () => {
    await api?.close();
    await engine?.stop();
    await tdb?.drop();
  });

  it('creates a task (201), and the long-poll returns the moment it ends', async () => {
    const created = await post('/v1/tasks', { namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 6 } });
    expect(created.statusCode).toBe(201);
    const { id } = created.json();
    const waited = await api.inject({ method: 'GET', url: `/v1/tasks/${id}/wait?timeout_ms=20000` });
    expect(waited.statusCode).toBe(200);
    const body = waited.json();
    expect(body).toMatchObject({ ended: true, state: 'complete', id });
    expect(body.steps.map((s: { name: string; state: string; attempts: number }) => [s.name, s.state, s.attempts])).toEqual([
      ['linear_step_1', 'complete', 1],
      ['linear_step_2', 'complete', 1],
      ['linear_step_3', 'complete', 1],
      ['linear_step_4', 'complete', 1],
    ]);
    expect(body.steps[3].result).toBe(2821109907456);
    expect(body.duration_ms).toBeGreaterThan(0);
    const got = await api.inject({ method: 'GET', url: `/v1/tasks/${id}` });
    expect(got.json().steps[0]).toMatchObject({ result: 36, error: null, parents: [] });
    expect(got.json().steps[1].parents).toEqual(['linear_step_1']);
  });

  it('a long-poll on a task that has already ended answers from one read: its state and view in one statement', async () => {
    const { id } = (await post('/v1/tasks', { namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 } })).json();
    expect((await api.inject({ method: 'GET', url: `/v1/tasks/${id}/wait?timeout_ms=20000` })).json()).toMatchObject({ ended: true });
    const reads: string[] = [];
    const real = Database.prototype.queryIdempotent;
    const spy = vi.spyOn(Database.prototype, 'queryIdempotent').mockImplementation(function (this: Database, text: string, values?: unknown[], name?: string) {
      if (values?.[0] === id) reads.push(name ?? text);
      return real.call(this, text, values, name) as never;
    });
    try {
      const again = await api.inject({ method: 'GET', url: `/v1/tasks/${id}/wait?timeout_ms=20000` });
      expect(again.statusCode).toBe(200);
      expect(again.json()).toMatchObject({ id, ended: true, state: 'complete' });
      expect(again.json().steps[3].result).toBe(65536);
      expect(reads).toEqual(['weft_ended_task_view']);
    } finally {
      spy.mockRestore();
    }
  });

  it.each([
    ['a missing field', { name: 'mathematical_sequence', context: {} }, 'namespace', "must have required property 'namespace'"],
    ['a wrong type', { namespace: 7, name: 'mathematical_sequence' }, 'namespace', 'must be string'],
    ['an unknown field', { namespace: 'e2e_linear', name: 'mathematical_sequence', contxt: {} }, 'contxt', 'must NOT have additional properties'],
    [
      'an input_schema violation',
      { namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 7 } },
      'context.even_number',
      'multiple of 2',
    ],
    ['a missing context field', { namespace: 'e2e_linear', name: 'mathematical_sequence', context: {} }, 'context.even_number', 'even_number'],
  ])('answers 400 naming the field for %s, and creates nothing', async (_what, payload, path, message) => {
    const before = await counts();
    const res = await post('/v1/tasks', payload);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.path).toBe(path);
    expect(res.json().error.message).toContain(message);
    expect(await counts()).toEqual(before);
  });

  it('answers 404 for an unknown template, naming what the namespace has', async () => {
    const before = await counts();
    const res = await post('/v1/tasks', { namespace: 'e2e_linear', name: 'nope', context: {} });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.message).toBe('no template e2e_linear/nope is registered; namespace e2e_linear has: mathematical_sequence@1.0.0');
    expect(await counts()).toEqual(before);
  });

  it('answers a repeated idempotency key with the existing task (200), or 409 when the request differs, and creates nothing the second time', async () => {
    const req = { namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 4 }, idempotency_key: 'order-42' };
    const first = await post('/v1/tasks', req);
    expect(first.statusCode).toBe(201);
    const before = await counts();
    const again = await post('/v1/tasks', req);
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(first.json().id);
    const changed = await post('/v1/tasks', { ...req, context: { even_number: 8 } });
    expect(changed.statusCode).toBe(409);
    expect(changed.json().error.message).toContain('idempotency_key "order-42" already exists');
    expect(changed.json().error.task_id).toBe(first.json().id);
    // (The first task runs meanwhile: its steps' transitions grow, its rows do not.)
    expect(await counts()).toMatchObject({ tasks: before.tasks, steps: before.steps });
  });

  it('answers 400 for an id that is not a UUID and 404 for an unknown task', async () => {
    expect((await api.inject({ method: 'GET', url: '/v1/tasks/42' })).json().error).toMatchObject({ path: 'id', message: 'task id "42" is not a UUID' });
    const missing = await api.inject({ method: 'GET', url: '/v1/tasks/01a21e54-5be0-76be-97b1-9441a6c8e351' });
    expect(missing.statusCode).toBe(404);
    expect((await api.inject({ method: 'GET', url: '/v1/tasks/01a21e54-5be0-76be-97b1-9441a6c8e351/wait?timeout_ms=abc' })).statusCode).toBe(400);
  });

  it('registers templates: 201, then 200 for the same, 409 for a changed definition under the same version, 400 listing problems', async () => {
    const yaml = 'namespace: api_t\nname: one\nversion: 1.0.0\nsteps:\n  - { name: a, handler: linear.square }\n';
    const headers = { 'content-type': 'application/yaml' };
    expect((await api.inject({ method: 'POST', url: '/v1/templates', payload: yaml, headers })).statusCode).toBe(201);
    expect((await api.inject({ method: 'POST', url: '/v1/templates', payload: yaml, headers })).statusCode).toBe(200);
    const changed = await api.inject({ method: 'POST', url: '/v1/templates', payload: yaml.replace('name: a', 'name: b'), headers });
    expect(changed.statusCode).toBe(409);
    expect(changed.json().error.message).toContain('bump `version`');
    const bad = await api.inject({
      method: 'POST',
      url: '/v1/templates',
      payload: 'namespace: api_t\nname: two\nversion: 1.0\nsteps:\n  - { name: a, handler: x, depend_on: [b] }\n',
      headers,
    });
    expect(bad.statusCode).toBe(400);
    const paths = bad.json().error.problems.map((p: { path: string }) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['version', 'steps[0].depend_on']));
    const listed = (await api.inject({ method: 'GET', url: '/v1/templates' }))
      .json()
      .templates.map((t: { namespace: string; name: string }) => `${t.namespace}/${t.name}`);
    expect(listed).toContain('api_t/one');
    expect(listed).not.toContain('api_t/two');
  });

  it('refuses (400) a template that would close a cycle of templates running each other as child workflows, naming the cycle', async () => {
    const headers = { 'content-type': 'application/yaml' };
    const calling = (name: string, callee: string) =>
      `namespace: api_cycle\nname: ${name}\nversion: 1.0.0\nsteps:\n  - { name: call, type: workflow, workflow: { name: ${callee} } }\n`;
    expect((await api.inject({ method: 'POST', url: '/v1/templates', payload: calling('a', 'b'), headers })).statusCode).toBe(201);
    const refused = await api.inject({ method: 'POST', url: '/v1/templates', payload: calling('b', 'a'), headers });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.message).toContain('api_cycle/b@1.0.0 (step call) → api_cycle/a@1.0.0 (step call) → api_cycle/b@1.0.0');
  });

  it('reports health and Prometheus metrics', async () => {
    const health = await api.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toMatchObject({ status: 'healthy', database: { ok: true }, messaging: { ok: true, backend: 'pg' } });
    const metrics = (await api.inject({ method: 'GET', url: '/metrics' })).body;
    for (const name of [
      'weft_step_latency_ms_bucket',
      'weft_task_latency_ms_count',
      'weft_steps{state="enqueued"}',
      'weft_queue_depth',
      'weft_db_pool_in_use',
      'weft_db_pool_acquire_ms',
    ]) {
      expect(metrics).toContain(name);
    }
  });

  it("serves the workers' step counts and latency, published with their heartbeats", async () => {
    // The first test ran a 4-step task; the worker publishes its figures within a second.
    const deadline = Date.now() + 10_000;
    let body = '';
    const value = (pattern: RegExp) => Number(pattern.exec(body)?.[1] ?? NaN);
    for (;;) {
      body = (await api.inject({ method: 'GET', url: '/metrics' })).body;
      if (value(/^weft_steps_total\{runtime="native",outcome="succeeded"\} (\d+)/m) >= 4 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(value(/^weft_steps_total\{runtime="native",outcome="succeeded"\} (\d+)/m)).toBeGreaterThanOrEqual(4);
    expect(value(/^weft_step_latency_ms_count\{runtime="native"\} (\d+)/m)).toBeGreaterThanOrEqual(4);
    expect(value(/^weft_tasks_ended_total\{state="complete"\} (\d+)/m)).toBeGreaterThanOrEqual(1);
  });
});
