import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { MAX_JSON_DEPTH } from '../../src/core/json-depth.js';

/** `{"a": {"a": … 1 …}}`, `levels` objects deep, as text (JSON.stringify would overflow on the deepest). */
const nestedText = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
const nested = (levels: number): unknown => JSON.parse(nestedText(levels));

describe('API: values PostgreSQL cannot store, nesting and idempotent retries', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  let api: FastifyInstance;

  const tasks = async () => (await tdb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM weft.tasks')).rows[0]!.n;
  const postText = (url: string, payload: string) => api.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json' } });
  const task = (extra: Record<string, unknown>) => ({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 }, ...extra });

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend: 'pg', url: tdb.url, namespaces: ['e2e_linear'] });
    api = buildApi({ orchestrator: engine.orchestrators[0]!, db: engine.db, bus: new PgMessageBus(engine.db, silentLogger()), log: silentLogger(), ui: false });
    await api.ready();
  });
  afterAll(async () => {
    await api?.close();
    await engine?.stop();
    await tdb?.drop();
  });

  it.each([
    [
      'NUL in a context string',
      '{"namespace":"e2e_linear","name":"mathematical_sequence","context":{"even_number":2,"note":["ok","a\\u0000b"]}}',
      'context.note[1]',
      'U+0000 (NUL)',
    ],
    [
      'NUL in a context key',
      '{"namespace":"e2e_linear","name":"mathematical_sequence","context":{"even_number":2,"k\\u0000":1}}',
      'context["k\\u0000"]',
      'has a key that contains the character U+0000',
    ],
    [
      'a lone surrogate in the context',
      '{"namespace":"e2e_linear","name":"mathematical_sequence","context":{"even_number":2,"s":"\\ud800"}}',
      'context.s',
      'lone UTF-16 surrogate',
    ],
    [
      'NUL in the idempotency key',
      '{"namespace":"e2e_linear","name":"mathematical_sequence","context":{"even_number":2},"idempotency_key":"k\\u0000"}',
      'idempotency_key',
      'U+0000 (NUL)',
    ],
    [
      'a lone surrogate in the idempotency key',
      '{"namespace":"e2e_linear","name":"mathematical_sequence","context":{"even_number":2},"idempotency_key":"\\udc00x"}',
      'idempotency_key',
      'lone UTF-16 surrogate',
    ],
    ['NUL in the namespace', '{"namespace":"e2e\\u0000","name":"mathematical_sequence"}', 'namespace', 'U+0000 (NUL)'],
  ])('POST /v1/tasks with %s: 400 naming the path, nothing created', async (_what, body, path, problem) => {
    const before = await tasks();
    const res = await postText('/v1/tasks', body);
    expect(res.statusCode).toBe(400);
    const error = res.json().error;
    expect(error).toMatchObject({ code: 'invalid_input', path });
    expect(error.message).toContain(`${path} `);
    expect(error.message).toContain(problem);
    expect(error.message).toContain('PostgreSQL cannot store');
    expect(await tasks()).toBe(before);
  });

  it(`accepts a context exactly ${MAX_JSON_DEPTH} levels deep and refuses one level more, naming the path`, async () => {
    const ok = await api.inject({ method: 'POST', url: '/v1/tasks', payload: task({ context: { even_number: 2, deep: nested(MAX_JSON_DEPTH - 1) } }) });
    expect(ok.statusCode).toBe(201);
    const before = await tasks();
    const res = await api.inject({ method: 'POST', url: '/v1/tasks', payload: task({ context: { even_number: 2, deep: nested(MAX_JSON_DEPTH) } }) });
    expect(res.statusCode).toBe(400);
    const error = res.json().error;
    expect(error.path).toBe(`context.deep${'.a'.repeat(MAX_JSON_DEPTH - 1)}`);
    expect(error.message).toContain(`nests deeper than ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH)`);
    expect(await tasks()).toBe(before);
  });

  it.each([5_000, 100_000])('answers 400 (not 500, no stack overflow) for a body nested %i deep, in arrays and objects', async (levels) => {
    const before = await tasks();
    const objects = await postText('/v1/tasks', `{"namespace":"e2e_linear","name":"mathematical_sequence","context":${nestedText(levels)}}`);
    expect(objects.statusCode).toBe(400);
    expect(objects.json().error.path).toBe(`context${'.a'.repeat(MAX_JSON_DEPTH)}`);
    const arrays = await postText(
      '/v1/tasks',
      `{"namespace":"e2e_linear","name":"mathematical_sequence","context":{"x":${'['.repeat(levels)}${']'.repeat(levels)}}}`,
    );
    expect(arrays.statusCode).toBe(400);
    expect(arrays.json().error.path).toBe(`context.x${'[0]'.repeat(MAX_JSON_DEPTH - 1)}`);
    const templates = await postText('/v1/templates', `{"namespace":"x","steps":${'['.repeat(levels)}${']'.repeat(levels)}}`);
    expect(templates.statusCode).toBe(400);
    expect(templates.json().error.code).toBe('invalid_input');
    expect(await tasks()).toBe(before);
  });

  it('names the path of a deep body exactly, however its strings and keys are written', async () => {
    const tricky = `{"namespace":"e2e_linear","name":"mathematical_sequence","context":{"s":"[[[{{{\\"]]","list":[1,"]",{"k\\"ey":0}],"odd key":${'['.repeat(200)}${']'.repeat(200)}}}`;
    const res = await postText('/v1/tasks', tricky);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.path).toBe(`context["odd key"]${'[0]'.repeat(MAX_JSON_DEPTH - 1)}`);
  });

  it('refuses a template whose values PostgreSQL cannot store or that nests too deeply, in JSON and YAML', async () => {
    const json = await postText(
      '/v1/templates',
      '{"namespace":"api_v","name":"t","version":"1.0.0","description":"a\\u0000","steps":[{"name":"a","handler":"linear.square"}]}',
    );
    expect(json.statusCode).toBe(400);
    expect(json.json().error).toMatchObject({ code: 'invalid_input', path: 'description' });
    const yaml = await api.inject({
      method: 'POST',
      url: '/v1/templates',
      payload: 'namespace: api_v\nname: t\nversion: 1.0.0\ndescription: "a\\0b"\nsteps:\n  - { name: a, handler: linear.square }\n',
      headers: { 'content-type': 'application/yaml' },
    });
    expect(yaml.statusCode).toBe(400);
    expect(yaml.json().error).toMatchObject({ code: 'invalid_input', path: 'description' });
    const deepYaml = await api.inject({
      method: 'POST',
      url: '/v1/templates',
      payload: `namespace: api_v\nname: t\nversion: 1.0.0\nsteps:\n  - { name: a, handler: linear.square }\nx: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`,
      headers: { 'content-type': 'application/yaml' },
    });
    expect(deepYaml.statusCode).toBe(400);
    expect((await api.inject({ method: 'GET', url: '/v1/templates/api_v/t' })).statusCode).toBe(404);
  });

  describe('idempotency keys', () => {
    it('answers a repeated identical request with the existing task (200), whatever the key order', async () => {
      const first = await api.inject({
        method: 'POST',
        url: '/v1/tasks',
        payload: task({ idempotency_key: 'idem-same', context: { even_number: 2, b: 1, a: [1, 2] } }),
      });
      expect(first.statusCode).toBe(201);
      const before = await tasks();
      const again = await postText(
        '/v1/tasks',
        '{"idempotency_key":"idem-same","context":{"a":[1,2],"b":1,"even_number":2},"name":"mathematical_sequence","namespace":"e2e_linear","version":"1.0.0"}',
      );
      expect(again.statusCode).toBe(200);
      expect(again.headers.location).toBe(`/v1/tasks/${first.json().id}`);
      expect(again.json()).toMatchObject({ id: first.json().id, idempotency_key: 'idem-same', namespace: 'e2e_linear', context: { even_number: 2 } });
      expect(again.json().steps.length).toBeGreaterThan(0);
      expect(await tasks()).toBe(before);
    });

    it('answers a repeated key with a different request 409, naming the existing task and what differs', async () => {
      const first = await api.inject({ method: 'POST', url: '/v1/tasks', payload: task({ idempotency_key: 'idem-diff' }) });
      expect(first.statusCode).toBe(201);
      const before = await tasks();
      const again = await api.inject({ method: 'POST', url: '/v1/tasks', payload: task({ idempotency_key: 'idem-diff', context: { even_number: 4 } }) });
      expect(again.statusCode).toBe(409);
      const error = again.json().error;
      expect(error).toMatchObject({ code: 'conflict', task_id: first.json().id, differs: ['context'] });
      expect(error.message).toBe(
        `a task with idempotency_key "idem-diff" already exists (${first.json().id}) and was created with a different context; ` +
          `use a new key to create another task, or GET /v1/tasks/${first.json().id}`,
      );
      const otherVersion = await api.inject({ method: 'POST', url: '/v1/tasks', payload: task({ idempotency_key: 'idem-diff', version: '9.9.9' }) });
      expect(otherVersion.statusCode).toBe(404); // the template check comes first: no such version
      expect(await tasks()).toBe(before);
    });

    it('looks a task up by its idempotency key (GET /v1/tasks/by-key/:key), 404 naming the key otherwise', async () => {
      const first = await api.inject({ method: 'POST', url: '/v1/tasks', payload: task({ idempotency_key: 'order/42 ü' }) });
      expect(first.statusCode).toBe(201);
      const found = await api.inject({ method: 'GET', url: `/v1/tasks/by-key/${encodeURIComponent('order/42 ü')}` });
      expect(found.statusCode).toBe(200);
      expect(found.json()).toMatchObject({ id: first.json().id, idempotency_key: 'order/42 ü' });
      const missing = await api.inject({ method: 'GET', url: '/v1/tasks/by-key/nope' });
      expect(missing.statusCode).toBe(404);
      expect(missing.json().error.message).toBe('no task has idempotency_key "nope"');
      const nul = await api.inject({ method: 'GET', url: '/v1/tasks/by-key/a%00b' });
      expect(nul.statusCode).toBe(400);
      expect(nul.json().error.path).toBe('key');
    });
  });
});
