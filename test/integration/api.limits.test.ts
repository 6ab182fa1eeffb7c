/**
 * The API's limits against a real HTTP server (issue 15, and issue 20's rate
 * limit): body size and the budget of bodies read at once, slow bodies and
 * the connection cap, failed-authentication throttling, rate limits on task
 * creation, retries and template registration (none for loopback callers of
 * an open API), and long-lived answers ended when their token is revoked.
 */
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { buildApi, type ApiOptions } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { createToken, revokeToken } from '../../src/store/tokens.js';
import { AUTH_FAILURES_PER_MINUTE } from '../../src/api/auth.js';

const LIMIT = 4_096;
const task = (n = 2) => ({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: n } });
/** A task that stays running: no worker serves e2e_diamond in this file. */
const stuck = { namespace: 'e2e_diamond', name: 'diamond_pattern', context: { even_number: 2 } };

/** A socket that sends what it is told and records what comes back and whether the server closed it. */
function openSocket(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  const gotData = new Set<() => void>();
  socket.on('data', (d) => {
    received += d.toString('utf8');
    for (const f of gotData) f();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return {
    socket,
    closed,
    received: () => received,
    /** Resolves once the answer's head (and `contains`, when given) has arrived. */
    answer(contains = '\r\n\r\n'): Promise<string> {
      return new Promise((resolve) => {
        const check = () => {
          if (received.includes(contains)) {
            gotData.delete(check);
            resolve(received);
          }
        };
        gotData.add(check);
        check();
      });
    },
  };
}

describe('API limits', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  const apis: FastifyInstance[] = [];

  const start = async (o: Partial<ApiOptions> = {}) => {
    const api = buildApi({
      orchestrator: engine.orchestrators[0]!,
      db: engine.db,
      bus: new PgMessageBus(engine.db, silentLogger()),
      log: silentLogger(),
      ui: false,
      auth: { cacheMs: 0 },
      ...o,
    });
    await api.listen({ host: '127.0.0.1', port: 0 });
    apis.push(api);
    const port = (api.server.address() as net.AddressInfo).port;
    return { api, port, base: `http://127.0.0.1:${port}` };
  };
  const postJson = (base: string, path: string, body: unknown, token?: string) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend: 'pg', url: tdb.url, namespaces: ['e2e_linear'] });
  });
  afterEach(async () => {
    for (const api of apis.splice(0)) await api.close();
    await engine.db.query('UPDATE weft.api_tokens SET revoked_at = now() WHERE revoked_at IS NULL');
  });
  afterAll(async () => {
    await engine?.stop();
    await tdb?.drop();
  });

  it('answers a body over the limit 413 in the envelope, naming the limit and its setting, and closes without reading it', async () => {
    const { port, base } = await start({ limits: { bodyLimitBytes: LIMIT, bodyBudgetBytes: LIMIT } });
    const c = openSocket(port);
    // Announces 1 MiB and sends a few bytes: the answer must not wait for the rest.
    c.socket.write(`POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{"context":`);
    await c.closed;
    const [head, body] = c.received().split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1.1 413 /);
    expect(head!.toLowerCase()).toContain('connection: close');
    expect(JSON.parse(body!)).toEqual({
      error: {
        code: 'too_large',
        limit_bytes: LIMIT,
        message:
          'the request body is larger than the limit of 4096 bytes (WEFT_API_BODY_LIMIT); pass large data by reference (an id or URL the handler reads) instead, or raise WEFT_API_BODY_LIMIT',
      },
    });
    // A body sent in chunks with no length is cut at the limit too.
    const chunked = await fetch(`${base}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new Blob([JSON.stringify({ ...task(), context: { even_number: 2, pad: 'x'.repeat(LIMIT) } })]).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect((await chunked.json()).error.code).toBe('too_large');
  });

  it('reads at most the body budget at once: another body waits, then gets 503 with Retry-After; it is served once the first is done', async () => {
    const { port, base } = await start({ limits: { bodyLimitBytes: LIMIT, bodyBudgetBytes: LIMIT }, bodyWaitMs: 300 });
    const body = JSON.stringify(task());
    const slow = openSocket(port);
    slow.socket.write(`POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${LIMIT}\r\n\r\n${body.slice(0, 10)}`);
    // The slow body holds the whole budget while it trickles in: this one waits, then is turned away.
    let busy: Response;
    do busy = await postJson(base, '/v1/tasks', task());
    while (busy.status !== 503 && slow.received() === '');
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBe('1');
    expect((await busy.json()).error).toMatchObject({ code: 'busy', retry_after_s: 1, message: expect.stringContaining('(WEFT_API_BODY_BUDGET)') });
    slow.socket.write(`${body.slice(10)}${' '.repeat(LIMIT - body.length)}`);
    expect(await slow.answer('"state"')).toMatch(/^HTTP\/1.1 201 /);
    expect((await postJson(base, '/v1/tasks', task())).status).toBe(201);
    slow.socket.destroy();
  });

  it('ends a request whose body stalls with 408 after the request timeout, and caps open connections', async () => {
    const { port, base } = await start({ limits: { requestTimeoutMs: 1_500, maxConnections: 3 } });
    const stalled = openSocket(port);
    stalled.socket.write(`POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":`);
    await stalled.closed;
    const [head, body] = stalled.received().split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1.1 408 /);
    expect(JSON.parse(body!).error.code).toBe('request_timeout');

    const held = [openSocket(port), openSocket(port), openSocket(port)];
    for (const h of held) h.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await Promise.all(held.map((h) => h.answer('"status"')));
    const extra = openSocket(port);
    extra.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await extra.closed;
    expect(extra.received()).toBe('');
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('closes the connection after a 401 or a 403 without reading the body a client is still sending', async () => {
    const { port } = await start();
    await createToken(engine.db, 'limits-writer', ['write']);
    const reader = await createToken(engine.db, 'limits-slow-reader', ['read']);
    for (const [auth, status] of [
      ['', '401'],
      [`Authorization: Bearer ${reader.token}\r\n`, '403'],
    ] as const) {
      const c = openSocket(port);
      const head = `{"namespace":`;
      c.socket.write(`POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/json\r\nContent-Length: 2000\r\n\r\n${head}`);
      await c.answer();
      expect(c.received()).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
      expect(c.received().toLowerCase()).toContain('connection: close');
      // Had the server kept the connection, the rest of the body and a second request would get a second answer.
      c.socket.write(`${' '.repeat(2000 - head.length)}GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      await c.closed;
      expect(c.received().match(/HTTP\/1\.1 \d{3} /g)).toHaveLength(1);
    }
  });

  it('throttles an address that keeps presenting unknown tokens (429 with Retry-After), and not a caller with a live one', async () => {
    const { api, base } = await start();
    const reader = await createToken(engine.db, 'limits-reader', ['read']);
    const bad = () => fetch(`${base}/v1/tasks`, { headers: { authorization: 'Bearer weft_guess' } });
    for (let i = 0; i < AUTH_FAILURES_PER_MINUTE; i++) expect((await bad()).status).toBe(401);
    const throttled = await bad();
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await throttled.json()).error).toMatchObject({
      code: 'auth_throttled',
      message: expect.stringMatching(/^this address presented 20 unknown or revoked tokens within a minute; its requests are refused for \d+ s/),
    });
    const other = await api.inject({ method: 'GET', url: '/v1/tasks', remoteAddress: '192.0.2.9', headers: { authorization: `Bearer ${reader.token}` } });
    expect(other.statusCode).toBe(200);
  });

  it('does not limit loopback callers of an open API (a load test gets no 429); limits a token, and its retries and template registrations', async () => {
    const { base } = await start({ createPerMinute: 2, limits: { templateRateLimitPerMinute: 1 } });
    const open: number[] = [];
    for (let i = 0; i < 6; i++) open.push((await postJson(base, '/v1/tasks', task())).status);
    expect(open).toEqual([201, 201, 201, 201, 201, 201]);

    const admin = await createToken(engine.db, 'limits-admin', ['admin']);
    const created: number[] = [];
    for (let i = 0; i < 3; i++) created.push((await postJson(base, '/v1/tasks', task(), admin.token)).status);
    expect(created).toEqual([201, 201, 429]);

    const running = (await (await postJson(base, '/v1/tasks', stuck, (await createToken(engine.db, 'limits-other', ['write'])).token)).json()) as {
      id: string;
    };
    const retries: number[] = [];
    for (let i = 0; i < 3; i++) retries.push((await postJson(base, `/v1/tasks/${running.id}/retry`, {}, admin.token)).status);
    expect(retries).toEqual([409, 409, 429]);
    const limited = await postJson(base, `/v1/tasks/${running.id}/retry`, {}, admin.token);
    expect((await limited.json()).error.message).toMatch(
      /^token "limits-admin" may start 2 retries per minute on this orchestrator \(WEFT_TASK_RATE_LIMIT\); try again in \d+ s$/,
    );

    const yaml = (v: string) => `namespace: limits_t\nname: one\nversion: ${v}\nsteps:\n  - { name: a, handler: linear.square }\n`;
    const register = (v: string) =>
      fetch(`${base}/v1/templates`, { method: 'POST', headers: { 'content-type': 'application/yaml', authorization: `Bearer ${admin.token}` }, body: yaml(v) });
    expect((await register('1.0.0')).status).toBe(201);
    const second = await register('1.0.1');
    expect(second.status).toBe(429);
    expect((await second.json()).error.message).toMatch(
      /^token "limits-admin" may register 1 templates per minute on this orchestrator \(WEFT_TEMPLATE_RATE_LIMIT\)/,
    );
  });

  it("lets a loopback burst of 150 task creations at once through an open API with a limit of 100 per minute (no 429), and counts a token's batches", async () => {
    // 150 concurrent creations take well under a second here: more than 100 per second from loopback, none refused.
    const { base } = await start({ createPerMinute: 100, limits: { taskBatchLimit: 50 } });
    const burst = await Promise.all(Array.from({ length: 150 }, () => postJson(base, '/v1/tasks', task())));
    expect(burst.map((r) => r.status).filter((s) => s !== 201)).toEqual([]);
    const batches = await Promise.all(Array.from({ length: 4 }, () => postJson(base, '/v1/tasks/batch', { tasks: [task(), task()] })));
    expect(batches.map((r) => r.status)).toEqual([200, 200, 200, 200]);

    // A token may send WEFT_TASK_RATE_LIMIT / WEFT_TASK_BATCH_LIMIT batches a minute: 100 / 50 = 2, as many tasks as 100 single creations.
    const writer = await createToken(engine.db, 'limits-batch', ['write']);
    const tokenBatches: number[] = [];
    for (let i = 0; i < 3; i++) tokenBatches.push((await postJson(base, '/v1/tasks/batch', { tasks: [task()] }, writer.token)).status);
    expect(tokenBatches).toEqual([200, 200, 429]);
    const limited = await postJson(base, '/v1/tasks/batch', { tasks: [task()] }, writer.token);
    expect((await limited.json()).error.message).toMatch(
      /^token "limits-batch" may submit 2 task batches per minute on this orchestrator \(WEFT_TASK_RATE_LIMIT \/ WEFT_TASK_BATCH_LIMIT\); try again in \d+ s$/,
    );
  });

  it("ends a revoked token's event streams and long-polls at once", async () => {
    const { base } = await start();
    const reader = await createToken(engine.db, 'limits-watcher', ['read']);
    const writer = await createToken(engine.db, 'limits-maker', ['write']);
    const { id } = (await (await postJson(base, '/v1/tasks', stuck, writer.token)).json()) as { id: string };
    const auth = { authorization: `Bearer ${reader.token}` };

    const stream = await fetch(`${base}/v1/tasks/${id}/events`, { headers: auth });
    const reading = (async () => {
      let text = '';
      const decoder = new TextDecoder();
      for await (const chunk of stream.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
      return text;
    })();
    const wait = fetch(`${base}/v1/tasks/${id}/wait?timeout_ms=600000`, { headers: auth });
    // Both are open (the task never ends in this file) until the token goes.
    expect((await fetch(`${base}/v1/tasks/${id}`, { headers: auth })).status).toBe(200);
    await revokeToken(engine.db, 'limits-watcher');

    const text = await reading;
    expect(text).toContain('event: hello');
    expect(text).toMatch(/event: revoked\ndata: \{"message":"the token this request was made with has been revoked/);
    const waited = await wait;
    expect(waited.status).toBe(401);
    expect((await waited.json()).error).toMatchObject({ code: 'token_invalid', message: expect.stringContaining('has been revoked') });
  });
});
