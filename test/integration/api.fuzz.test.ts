/**
 * Fuzzing POST /v1/tasks (issue: bad values answered 500): arbitrary JSON,
 * strings with every escape (NUL, lone surrogates, controls), odd types in
 * every field, nesting from shallow to thousands of levels, and texts that
 * are not JSON at all. Every answer must be 2xx or 4xx with a JSON error,
 * never 5xx, and arrive within 5 s. Bounded: about 300 requests in all,
 * in-process (app.inject) against a real test database.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { Orchestrator } from '../../src/orchestration/orchestrator.js';
import { loadTemplateDir } from '../../src/core/template/load.js';
import { packageRoot } from '../../src/shared/paths.js';
import { silentLogger } from '../../src/shared/logger.js';

/** Any UTF-16 code unit sequence: NUL, controls, lone surrogates, quotes, backslashes. */
const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 12 }).map((codes) => String.fromCharCode(...codes)),
  fc.constantFrom(
    '',
    '\u0000',
    '\ud800',
    '\udfff',
    'a\udc00b',
    '\\u0000',
    '"',
    '\\',
    '\n\r\t\b\f',
    '__proto__',
    'constructor',
    'e2e_linear',
    'mathematical_sequence',
    '1.0.0',
  ),
);

const json = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, 1e308, -0),
    anyString,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(anyString, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** A field: a plausible value or anything at all (a number, an object, a string with NULs, …). */
const field = (plausible: fc.Arbitrary<unknown>) => fc.oneof(plausible, json);

/** A body the schema accepts, carrying odd strings and values where they reach the template check and PostgreSQL. */
const plausibleBody = fc.record(
  {
    namespace: fc.constant('e2e_linear'),
    name: fc.constant('mathematical_sequence'),
    version: fc.constant('1.0.0'),
    context: fc.tuple(fc.constantFrom(2, 4, 7), fc.dictionary(anyString, json, { maxKeys: 4 })).map(([even_number, rest]) => ({ ...rest, even_number })),
    idempotency_key: fc.oneof(anyString, fc.constantFrom('fuzz-1', 'fuzz-2')),
  },
  { requiredKeys: ['namespace', 'name', 'context'] },
);

const anyBody = fc.record(
  {
    namespace: field(fc.constantFrom('e2e_linear', 'nope')),
    name: field(fc.constantFrom('mathematical_sequence', 'x')),
    version: field(fc.constantFrom('1.0.0', '9.9.9')),
    context: field(fc.record({ even_number: fc.oneof(fc.constantFrom(2, 4, 7), json) })),
    idempotency_key: field(fc.oneof(anyString, fc.constant('k'.repeat(201)))),
    extra: json,
  },
  { requiredKeys: [] },
);

/** `levels` containers deep, objects or arrays, as text (JSON.stringify would overflow on the deepest). */
const deepText = fc
  .record({ levels: fc.oneof(fc.integer({ min: 60, max: 70 }), fc.integer({ min: 70, max: 20_000 })), arrays: fc.boolean(), inContext: fc.boolean() })
  .map(({ levels, arrays, inContext }) => {
    const open = arrays ? '['.repeat(levels) : '{"a":'.repeat(levels);
    const close = arrays ? ']'.repeat(levels) : '}'.repeat(levels);
    const value = `${open}${arrays ? '' : '1'}${close}`;
    return inContext ? `{"namespace":"e2e_linear","name":"mathematical_sequence","context":{"even_number":2,"deep":${value}}}` : value;
  });

describe('POST /v1/tasks under fuzzing', () => {
  let tdb: TestDatabase;
  let orchestrator: Orchestrator;
  let api: FastifyInstance;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    const log = silentLogger();
    const bus = new PgMessageBus(tdb.db, log);
    // No worker: created tasks just stay running, which keeps the machine quiet.
    orchestrator = new Orchestrator({ db: tdb.db, bus, log, processId: 'orchestrator-fuzz-test' });
    await orchestrator.registerTemplates(await loadTemplateDir(join(packageRoot(), 'templates')));
    api = buildApi({ orchestrator, db: tdb.db, bus, log, ui: false });
    await api.ready();
  });
  afterAll(async () => {
    await api?.close();
    await tdb?.drop();
  });

  /** Send a body; fail on a 5xx, a non-JSON error or an answer slower than 5 s. */
  async function send(payload: string, contentType = 'application/json'): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const res = await Promise.race([
      api.inject({ method: 'POST', url: '/v1/tasks', payload, headers: { 'content-type': contentType } }),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within 5 s for ${payload.slice(0, 200)}`)), 5_000))),
    ]).finally(() => clearTimeout(timer));
    if (res.statusCode >= 500 || res.statusCode < 200) throw new Error(`${res.statusCode} for ${payload.slice(0, 300)}: ${res.body.slice(0, 500)}`);
    if (res.statusCode >= 400) {
      const error = res.json().error;
      if (typeof error?.code !== 'string' || typeof error?.message !== 'string')
        throw new Error(`${res.statusCode} without a JSON error: ${res.body.slice(0, 300)}`);
    }
    return res.statusCode;
  }

  it('answers task bodies with odd values in every field 2xx or 4xx, never 5xx', async () => {
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(fc.oneof(plausibleBody, anyBody), async (body) => {
        seen.add(await send(JSON.stringify(body)));
      }),
      { numRuns: 200 },
    );
    // The generator reaches both sides: some tasks are created, most bodies refused.
    expect([...seen].some((s) => s === 201)).toBe(true);
    expect([...seen].some((s) => s === 400)).toBe(true);
  });

  it('answers arbitrary JSON documents and nesting up to 20,000 levels 4xx, never 5xx or a hang', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          json.map((v) => JSON.stringify(v) ?? 'null'),
          deepText,
        ),
        async (text) => {
          await send(text);
        },
      ),
      { numRuns: 70 },
    );
  });

  it('answers texts that are not JSON, and odd content types, 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        anyString,
        fc.constantFrom('application/json', 'text/plain', 'application/yaml', 'application/octet-stream', 'application/json; charset=latin1'),
        async (text, type) => {
          const status = await send(text, type);
          expect(status).toBeGreaterThanOrEqual(400);
        },
      ),
      { numRuns: 30 },
    );
  });
});
