/**
 * What another web page can do to an API that has no token yet (issue 15):
 * nothing. A real orchestrator's HTTP server on a loopback port is sent what a
 * browser sends for a cross-site form, a `no-cors` fetch and a DNS-rebound
 * name; every answer, errors included, carries the security headers; and the
 * error bodies the issue found outside the documented envelope are in it.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { createToken, revokeToken } from '../../src/store/tokens.js';

const TEMPLATE = (name: string) => `namespace: open_t\nname: ${name}\nversion: 1.0.0\nsteps:\n  - { name: a, handler: linear.square }\n`;

/** One request over a fresh socket, exactly as written (a browser's headers, a bad Host). */
function rawRequest(port: number, text: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.on('data', (d) => (out += d.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', ...rest] = out.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
    socket.write(text);
  });
}

describe('an API with no token, driven by other web pages', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  let api: FastifyInstance;
  let port: number;
  let base: string;

  const templateNames = async () =>
    (await tdb.db.query<{ name: string }>(`SELECT name FROM weft.templates WHERE namespace = 'open_t' ORDER BY name`)).rows.map((r) => r.name);
  const send = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) => fetch(`${base}${path}`, init);

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend: 'pg', url: tdb.url, namespaces: ['e2e_linear'] });
    api = buildApi({
      orchestrator: engine.orchestrators[0]!,
      db: engine.db,
      bus: new PgMessageBus(engine.db, silentLogger()),
      log: silentLogger(),
      auth: { cacheMs: 0 },
      limits: { allowedHosts: ['weft.test'] },
    });
    await api.listen({ host: '127.0.0.1', port: 0 });
    port = (api.server.address() as net.AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await api?.close();
    await engine?.stop();
    await tdb?.drop();
  });

  it('refuses a DNS-rebound Host (403, nothing registered) and answers loopback names, its own address and WEFT_API_ALLOWED_HOSTS', async () => {
    const rebound = await rawRequest(
      port,
      `POST /v1/templates HTTP/1.1\r\nHost: attacker.example:${port}\r\nContent-Type: application/yaml\r\nContent-Length: ${TEMPLATE('rebound').length}\r\nConnection: close\r\n\r\n${TEMPLATE('rebound')}`,
    );
    expect(rebound.status).toBe(403);
    expect(JSON.parse(rebound.body).error).toMatchObject({ code: 'host_not_allowed', message: expect.stringContaining('Host "attacker.example:') });
    expect(JSON.parse(rebound.body).error.message).toContain('WEFT_API_ALLOWED_HOSTS');
    const read = await rawRequest(port, `GET /v1/tasks HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n`);
    expect(read.status).toBe(403);
    expect(await templateNames()).toEqual([]);

    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'weft.test', `WEFT.test:${port}`, 'app.localhost']) {
      const ok = await rawRequest(port, `GET /v1/templates HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect({ host, status: ok.status }).toEqual({ host, status: 200 });
    }
  });

  it('refuses a cross-site form (text/plain or form-encoded: 415) and a no-cors POST from another origin (403), so nothing changes', async () => {
    const form = await send('/v1/templates', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: TEMPLATE('form') });
    expect(form.status).toBe(415);
    expect((await form.json()).error).toEqual({
      code: 'unsupported_media_type',
      message: 'content-type "text/plain" is not accepted: send JSON (content-type: application/json), or a template as YAML (content-type: application/yaml)',
    });
    const urlencoded = await send('/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'namespace=e2e_linear&name=mathematical_sequence',
    });
    expect(urlencoded.status).toBe(415);

    // A task that stays running (no worker serves its namespace), then a no-cors fetch from another page tries to cancel it.
    const created = await send('/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'e2e_diamond', name: 'diamond_pattern', context: { even_number: 2 } }),
    });
    const t = created.status === 201 ? ((await created.json()) as { id: string }) : undefined;
    const id = t?.id ?? '01a21e54-5be0-76be-97b1-9441a6c8e351';
    const cancel = await send(`/v1/tasks/${id}/cancel`, { method: 'POST', headers: { origin: 'https://attacker.example' } });
    expect(cancel.status).toBe(403);
    expect((await cancel.json()).error).toMatchObject({ code: 'cross_origin', message: expect.stringContaining('Origin: https://attacker.example') });
    const sandboxed = await send('/v1/templates', {
      method: 'POST',
      headers: { origin: 'null', 'content-type': 'application/yaml' },
      body: TEMPLATE('sandboxed'),
    });
    expect(sandboxed.status).toBe(403);
    if (t) expect((await (await send(`/v1/tasks/${id}`)).json()).state).toBe('running');
    expect(await templateNames()).toEqual([]);

    // The dashboard's own requests are same-origin; a script sends no Origin at all.
    const sameOrigin = await send('/v1/templates', { method: 'POST', headers: { origin: base, 'content-type': 'application/yaml' }, body: TEMPLATE('same') });
    expect(sameOrigin.status).toBe(201);
    expect(await templateNames()).toEqual(['same']);
  });

  it("refuses API reads a browser marks as cross-site, and still opens the dashboard from another site's link", async () => {
    const read = await send('/v1/tasks', { headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' } });
    expect(read.status).toBe(403);
    expect((await read.json()).error.code).toBe('cross_origin');
    expect((await send('/v1/tasks', { headers: { 'sec-fetch-site': 'same-origin' } })).status).toBe(200);
    const page = await send('/', { headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="app">');
  });

  it('sends CSP, frame-ancestors, X-Frame-Options, Referrer-Policy and nosniff on every response: pages, JSON, errors, event streams, 431', async () => {
    const expectHeaders = (h: { get(n: string): string | null } | Record<string, string>, what: string) => {
      const get = (n: string) => ('get' in h && typeof h.get === 'function' ? (h.get(n) as string | null) : (h as Record<string, string>)[n]);
      expect({ what, csp: get('content-security-policy') }).toEqual({ what, csp: expect.stringContaining("frame-ancestors 'none'") });
      expect(get('content-security-policy')).toContain("default-src 'none'");
      expect(get('content-security-policy')).toContain("script-src 'self'");
      expect({ what, xfo: get('x-frame-options'), nosniff: get('x-content-type-options'), referrer: get('referrer-policy') }).toEqual({
        what,
        xfo: 'DENY',
        nosniff: 'nosniff',
        referrer: 'no-referrer',
      });
    };
    for (const path of ['/', '/app.js', '/v1/tasks', '/health', '/v1/nope', '/v1/tasks/42']) expectHeaders((await send(path)).headers, path);
    expectHeaders((await send('/v1/templates', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' })).headers, '415');
    expectHeaders((await rawRequest(port, 'GET /v1/tasks HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n')).headers, '403');

    const events = new AbortController();
    const stream = await send('/v1/events', { signal: events.signal });
    expectHeaders(stream.headers, 'event stream');
    events.abort();

    const huge = await rawRequest(port, `GET /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(huge.status).toBe(431);
    expectHeaders(huge.headers, '431');
    expect(JSON.parse(huge.body)).toEqual({
      error: { code: 'headers_too_large', message: 'the request headers are larger than this server reads (16 KiB); send fewer or smaller headers' },
    });
  });

  it('answers 404 in the error envelope, `GET /v1/tasks/` as a 404 naming the list, and /v1/bench without the server directory', async () => {
    const missing = await send('/v1/nope?x=1');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error: { code: 'not_found', message: "no route GET /v1/nope; docs/api.md lists the API's routes (they start with /v1/)" },
    });
    const slash = await send('/v1/tasks/');
    expect(slash.status).toBe(404);
    expect((await slash.json()).error).toEqual({
      code: 'not_found',
      message: 'the path names no task: GET /v1/tasks lists tasks, GET /v1/tasks/<id> reads one',
    });
    const bench = await (await send('/v1/bench')).text();
    expect(JSON.parse(bench)).not.toHaveProperty('dir');
    expect(bench).not.toContain(process.cwd());
  });

  it('says what is wrong with a body holding __proto__, and with broken JSON', async () => {
    const poisoned = await send('/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"namespace":"e2e_linear","name":"mathematical_sequence","context":{"items":[{"__proto__":{"admin":true}}]}}',
    });
    expect(poisoned.status).toBe(400);
    expect((await poisoned.json()).error).toMatchObject({
      code: 'invalid_input',
      path: 'context.items[0].__proto__',
      message:
        "context.items[0].__proto__ is a key weft refuses (it would set an object's prototype in a JavaScript handler that merges the value); rename the key",
    });
    const broken = await send('/v1/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"namespace": "e2e_linear",}' });
    expect(broken.status).toBe(400);
    expect((await broken.json()).error.message).toMatch(/^the body is not valid JSON: .+; send a JSON document with content-type: application\/json$/);
  });

  it('refuses a 200,000-deep YAML template before parsing it, naming the limit', async () => {
    for (const yaml of [`namespace: open_t\nname: deep\nversion: 1.0.0\nsteps: ${'['.repeat(200_000)}`, `x: ${'- '.repeat(200_000)}a\n`]) {
      const res = await send('/v1/templates', { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: yaml });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatchObject({
        code: 'invalid_input',
        message: expect.stringMatching(/^the template nests deeper than 64 levels \(MAX_JSON_DEPTH\) by line \d+, the most weft stores; flatten it$/),
      });
    }
  });

  it('steps aside once a token exists: any Host and Origin with a valid token, 401 without one', async () => {
    const admin = await createToken(engine.db, 'open-mode-admin', ['admin']);
    try {
      const viaName = await rawRequest(
        port,
        `GET /v1/tasks HTTP/1.1\r\nHost: weft.internal.example\r\nAuthorization: Bearer ${admin.token}\r\nConnection: close\r\n\r\n`,
      );
      expect(viaName.status).toBe(200);
      const noToken = await send('/v1/tasks', { headers: { origin: 'https://attacker.example' } });
      expect(noToken.status).toBe(401);
    } finally {
      await revokeToken(engine.db, 'open-mode-admin');
    }
  });
});
