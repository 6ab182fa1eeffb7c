/**
 * `weft orchestrator` as a real process (issue 15): a non-loopback --host with
 * no token is refused before the port is bound; the database password never
 * shows in /health or the log, however the URL carries it; a template whose
 * input_schema pattern backtracks catastrophically in JavaScript does not
 * freeze the server (its event loop keeps answering other requests).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { spawnWeft, type WeftProcess } from '../support/weft-process.js';
import { freePort, tcpProxy, until, type TcpProxy } from '../support/tcp-proxy.js';

const SECRET = 'Hunter2Secret';

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/** Whether anything accepts connections on 127.0.0.1:port right now. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

function exited(p: WeftProcess): Promise<number | null> {
  if (p.child.exitCode !== null) return Promise.resolve(p.child.exitCode);
  return new Promise((r) => p.child.once('exit', (code) => r(code)));
}

describe('weft orchestrator: refusals before binding, redacted database URLs, linear-time schema patterns', () => {
  let tdb: TestDatabase;
  let proxy: TcpProxy;
  const processes: WeftProcess[] = [];
  const spawn = (args: string[], env: Record<string, string>) => {
    const p = spawnWeft(args, { WEFT_MESSAGING: 'pg', WEFT_LOG_FORMAT: 'json', ...env });
    processes.push(p);
    return p;
  };

  beforeAll(async () => {
    tdb = await createTestDatabase();
    proxy = tcpProxy(await freePort());
  });
  afterAll(async () => {
    for (const p of processes) await p.stop('SIGKILL');
    await proxy?.close();
    await tdb?.drop();
  });

  it('refuses --host 0.0.0.0 with no token before binding its port or starting, even while it waits for PostgreSQL', async () => {
    const port = await freePort();
    const p = spawn(['orchestrator', '--host', '0.0.0.0', '--port', String(port)], {
      WEFT_DATABASE_URL: tdb.url.replace('127.0.0.1:5432', `127.0.0.1:${proxy.port}`),
      WEFT_LOG_LEVEL: 'info',
    });
    await until(
      'the orchestrator to wait for PostgreSQL',
      async () => p.output(),
      (out) => out.includes('PostgreSQL is unreachable; waiting for it'),
    );
    expect(await listening(port)).toBe(false);
    await proxy.open();
    const code = await exited(p);
    expect(code).toBe(1);
    expect(p.output()).toContain('refusing to listen on 0.0.0.0 with no API token');
    expect(p.output()).not.toContain('orchestrator listening');
    expect(await listening(port)).toBe(false);
    await proxy.close();
  });

  it.each([
    ['user:password@', `postgres://weft:${SECRET}@127.0.0.1:PORT/weft_nowhere`],
    ['?password=', `postgres://weft@127.0.0.1:PORT/weft_nowhere?password=${SECRET}&sslmode=disable`],
    ['a raw @ in the password', `postgres://weft:Hun@ter2Secret@127.0.0.1:PORT/weft_nowhere`],
  ])('never shows the password given as %s in /health or the log while PostgreSQL is unreachable', async (_form, template) => {
    const closedPort = await freePort();
    const port = await freePort();
    const p = spawn(['orchestrator', '--port', String(port)], { WEFT_DATABASE_URL: template.replace('PORT', String(closedPort)), WEFT_LOG_LEVEL: 'info' });
    const health = await until(
      '/health to say why it waits',
      () => getJson(`http://127.0.0.1:${port}/health`).catch(() => ({ status: 0, body: {} as any })),
      (h) => /ECONNREFUSED/.test(h.body.reason ?? ''),
    );
    expect(health.body).toMatchObject({ status: 'starting', waiting_for: 'database' });
    expect(health.body.reason).toContain('cannot connect to PostgreSQL at postgres://');
    await until(
      'the log to say why',
      async () => p.output(),
      (out) => out.includes('waiting for it'),
    );
    for (const text of [JSON.stringify(health.body), p.output()]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('ter2Secret');
    }
    await p.stop('SIGKILL');
  });

  it('answers a task whose context meets ^(a+)+$ with 40 characters at once, and other requests meanwhile', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    spawn(['orchestrator', '--port', String(port)], { WEFT_DATABASE_URL: tdb.url });
    await until(
      'the orchestrator to serve',
      () => getJson(`${base}/health`).catch(() => ({ status: 0, body: {} })),
      (h) => h.status === 200,
    );
    const template = {
      namespace: 'redos_t',
      name: 'evil',
      version: '1.0.0',
      input_schema: { type: 'object', properties: { word: { type: 'string', pattern: '^(a+)+$' } } },
      steps: [{ name: 'a', handler: 'linear.square' }],
    };
    const registered = await fetch(`${base}/v1/templates`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(template) });
    expect(registered.status).toBe(201);
    // With JavaScript's RegExp this value takes 2^40 steps: the event loop would never answer again.
    const evil = fetch(`${base}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'redos_t', name: 'evil', context: { word: `${'a'.repeat(40)}!` } }),
    });
    const [refused, health] = await Promise.all([evil, fetch(`${base}/health`)]);
    expect(health.status).toBe(200);
    expect(refused.status).toBe(400);
    expect((await refused.json()).error).toMatchObject({ path: 'context.word', message: expect.stringContaining('must match pattern "^(a+)+$"') });

    // A pattern the linear-time engine cannot run is refused at registration, naming the field.
    const lookahead = { ...template, name: 'lookahead', input_schema: { type: 'object', properties: { code: { type: 'string', pattern: '^(?=x)x+$' } } } };
    const refusedTemplate = await fetch(`${base}/v1/templates`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(lookahead),
    });
    expect(refusedTemplate.status).toBe(400);
    const problems = (await refusedTemplate.json()).error.problems as Array<{ path: string; message: string }>;
    expect(problems).toEqual([
      expect.objectContaining({ path: 'input_schema.properties.code.pattern', message: expect.stringContaining('pattern "^(?=x)x+$" cannot be used') }),
    ]);
  });
});
