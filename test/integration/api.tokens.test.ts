/** Bearer tokens with scopes, the open-on-loopback rule, the binding check, rate limiting and the admin audit line. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { capturingLogger } from '../support/log.js';
import { buildApi } from '../../src/api/server.js';
import { assertSafeBinding, requiredScope } from '../../src/api/auth.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { ConfigError, ConflictError, NotFoundError, ValidationError } from '../../src/shared/errors.js';
import { createToken, hashToken, listTokens, parseScopes, revokeToken, scopeAllows } from '../../src/store/tokens.js';

describe('API tokens', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  let api: FastifyInstance;
  const captured = capturingLogger();
  const task = { namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 } };
  const yaml = (v: string) => `namespace: tok_t\nname: one\nversion: ${v}\nsteps:\n  - { name: a, handler: linear.square }\n`;
  const call = (method: 'GET' | 'POST', url: string, token?: string, payload?: unknown, remoteAddress?: string) =>
    api.inject({
      method,
      url,
      remoteAddress,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(typeof payload === 'string' ? { 'content-type': 'application/yaml' } : {}) },
      payload: payload as string | object | undefined,
    });

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend: 'pg', url: tdb.url, namespaces: ['e2e_linear'] });
    api = buildApi({
      orchestrator: engine.orchestrators[0]!,
      db: engine.db,
      bus: new PgMessageBus(engine.db, silentLogger()),
      log: captured.log,
      auth: { cacheMs: 0 },
      createPerMinute: 3,
      ui: false,
    });
    await api.ready();
  });
  afterAll(async () => {
    await api?.close();
    await engine?.stop();
    await tdb?.drop();
  });

  it('decides scopes in one table and ranks them read < write < admin', () => {
    expect(requiredScope('GET', '/health')).toBe('open');
    expect(requiredScope('GET', '/')).toBe('open');
    expect(requiredScope('GET', '/v1/auth')).toBe('open');
    expect(requiredScope('GET', '/metrics')).toBe('read');
    expect(requiredScope('GET', '/v1/tasks/:id')).toBe('read');
    expect(requiredScope('POST', '/v1/tasks')).toBe('write');
    expect(requiredScope('POST', '/v1/tasks/:id/cancel')).toBe('write');
    expect(requiredScope('POST', '/v1/templates')).toBe('admin');
    expect(scopeAllows(['admin'], 'read')).toBe(true);
    expect(scopeAllows(['write'], 'admin')).toBe(false);
    expect(parseScopes(['read,write'])).toEqual(['read', 'write']);
    expect(() => parseScopes(['root'])).toThrow(new ValidationError('scope "root" is not one of read, write, admin', 'scope'));
    expect(() => parseScopes([])).toThrow(ValidationError);
  });

  it('refuses to bind beyond loopback with no token unless insecure', () => {
    expect(() => assertSafeBinding('0.0.0.0', 0, false)).toThrow(ConfigError);
    expect(() => assertSafeBinding('0.0.0.0', 0, false)).toThrow(/refusing to listen on 0.0.0.0 with no API token.*--insecure/);
    expect(() => assertSafeBinding('0.0.0.0', 0, true)).not.toThrow();
    expect(() => assertSafeBinding('0.0.0.0', 1, false)).not.toThrow();
    expect(() => assertSafeBinding('127.0.0.1', 0, false)).not.toThrow();
    expect(() => assertSafeBinding('::1', 0, false)).not.toThrow();
  });

  it('with no token, answers loopback callers and refuses others', async () => {
    expect((await call('GET', '/v1/templates')).statusCode).toBe(200);
    const remote = await call('GET', '/v1/templates', undefined, undefined, '192.0.2.7');
    expect(remote.statusCode).toBe(401);
    expect(remote.json().error.code).toBe('token_required');
    expect((await call('GET', '/health', undefined, undefined, '192.0.2.7')).statusCode).toBe(200);
    expect((await call('GET', '/v1/auth')).json()).toEqual({ required: false, open_to_this_caller: true, token: null });
  });

  it('with tokens, requires one with the route scope, stores only a hash, and forgets revoked ones', async () => {
    const reader = await createToken(engine.db, 'reader', ['read']);
    const writer = await createToken(engine.db, 'writer', ['write']);
    const admin = await createToken(engine.db, 'admin', ['admin']);
    expect(reader.token).toMatch(/^weft_[A-Za-z0-9_-]{43}$/);
    const stored = await engine.db.query('SELECT token_hash FROM weft.api_tokens WHERE name = $1', ['reader']);
    expect(stored.rows[0].token_hash).toBe(hashToken(reader.token));
    await expect(createToken(engine.db, 'reader', ['read'])).rejects.toThrow(ConflictError);

    const none = await call('GET', '/v1/tasks');
    expect(none.statusCode).toBe(401);
    expect(none.json().error).toMatchObject({ code: 'token_required', message: expect.stringContaining('needs a bearer token with scope read') });
    expect((await call('GET', '/v1/tasks', 'weft_wrong')).json().error.code).toBe('token_invalid');
    expect((await call('GET', '/v1/tasks', reader.token)).statusCode).toBe(200);
    expect((await call('GET', '/metrics')).statusCode).toBe(401);
    expect((await call('GET', '/metrics', reader.token)).statusCode).toBe(200);
    expect((await call('GET', '/health')).statusCode).toBe(200);

    const denied = await call('POST', '/v1/tasks', reader.token, task);
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.message).toBe('token "reader" has scope read; POST /v1/tasks needs write');
    expect((await call('POST', '/v1/tasks', writer.token, task)).statusCode).toBe(201);
    expect((await call('POST', '/v1/templates', writer.token, yaml('1.0.0'))).statusCode).toBe(403);
    expect((await call('GET', '/v1/auth', writer.token)).json()).toEqual({
      required: true,
      open_to_this_caller: false,
      token: { name: 'writer', scopes: ['write'] },
    });

    expect((await call('POST', '/v1/templates', admin.token, yaml('1.0.0'))).statusCode).toBe(201);
    expect((await call('POST', '/v1/templates', admin.token, yaml('1.0.0'))).statusCode).toBe(200);
    const audit = captured.lines.filter((l) => l.msg === 'template version registered');
    expect(audit).toEqual([expect.objectContaining({ template: 'tok_t/one@1.0.0', token: 'admin' })]);

    await revokeToken(engine.db, 'writer');
    expect((await call('POST', '/v1/tasks', writer.token, task)).json().error.code).toBe('token_invalid');
    await expect(revokeToken(engine.db, 'writer')).rejects.toThrow(NotFoundError);
    expect((await listTokens(engine.db)).map((t) => t.name)).toEqual(['reader', 'admin']);
    expect((await listTokens(engine.db, { includeRevoked: true })).map((t) => t.name)).toEqual(['reader', 'writer', 'admin']);
    // A revoked name can be used again.
    const again = await createToken(engine.db, 'writer', ['write']);

    // Task creation is rate-limited per token (createPerMinute: 3 here; the writer used one before its revocation).
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await call('POST', '/v1/tasks', again.token, task)).statusCode);
    expect(codes).toEqual([201, 201, 201, 429]);
    const limited = await call('POST', '/v1/tasks', again.token, task);
    expect(limited.json().error).toMatchObject({
      code: 'rate_limited',
      message: expect.stringMatching(/^token "writer" may create 3 tasks per minute on this orchestrator \(WEFT_TASK_RATE_LIMIT\); try again in \d+ s$/),
    });
    // Another token has its own budget.
    expect((await call('POST', '/v1/tasks', admin.token, task)).statusCode).toBe(201);
    for (const t of ['reader', 'admin', 'writer']) await revokeToken(engine.db, t);
  });
});
