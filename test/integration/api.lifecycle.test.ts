/**
 * `weft orchestrator` as a real process: started while PostgreSQL is
 * unreachable it binds its port, answers 503 "starting" saying why, waits
 * and then serves; on SIGTERM it ends open long-polls and event streams at
 * once (telling the clients to retry) and exits within 2 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { spawnWeft, type WeftProcess } from '../support/weft-process.js';
import { freePort, tcpProxy, until, type TcpProxy } from '../support/tcp-proxy.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { Orchestrator } from '../../src/orchestration/orchestrator.js';
import { silentLogger } from '../../src/shared/logger.js';

async function get(url: string): Promise<{ status: number; headers: Headers; body: Record<string, any> }> {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

/** Read an event stream until it ends, resolving `hello` once the first event arrived. */
function readStream(url: string) {
  let text = '';
  let helloed: () => void = () => undefined;
  const hello = new Promise<void>((r) => (helloed = r));
  const done = (async () => {
    const res = await fetch(url);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) return text;
      text += decoder.decode(value, { stream: true });
      if (text.includes('event: hello')) helloed();
    }
  })();
  return { hello, done };
}

describe('weft orchestrator: start while PostgreSQL is down, stop with open long-polls and streams', () => {
  let tdb: TestDatabase;
  let proxy: TcpProxy;
  let orchestrator: WeftProcess;
  let base: string;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    proxy = tcpProxy(await freePort());
  });
  afterAll(async () => {
    await orchestrator?.stop('SIGKILL');
    await proxy?.close();
    await tdb?.drop();
  });

  it('binds its port first, answers 503 "starting" naming the database and why, waits with backoff, then serves', async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    orchestrator = spawnWeft(['orchestrator', '--port', String(port), '--templates', 'templates'], {
      WEFT_DATABASE_URL: tdb.url.replace('127.0.0.1:5432', `127.0.0.1:${proxy.port}`),
      WEFT_MESSAGING: 'pg',
      WEFT_LOG_LEVEL: 'info',
      WEFT_LOG_FORMAT: 'json',
    });

    const waiting = await until(
      '/health to answer',
      () => get(`${base}/health`),
      (h) => /ECONNREFUSED/.test(h.body.reason ?? ''),
    );
    expect(waiting.status).toBe(503);
    expect(waiting.headers.get('retry-after')).toBe('5');
    expect(waiting.body).toMatchObject({ status: 'starting', waiting_for: 'database' });
    const api = await get(`${base}/v1/tasks`);
    expect(api.status).toBe(503);
    expect(api.body.error.code).toBe('starting');
    expect(api.body.error.message).toMatch(/^the orchestrator is starting: waiting for the database \(.*ECONNREFUSED.*\); retry in 5 s$/);
    await until(
      'the log to say why',
      async () => orchestrator.output(),
      (o) => o.includes('PostgreSQL is unreachable; waiting for it'),
    );
    expect(orchestrator.child.exitCode).toBeNull();

    await proxy.open();
    const ready = await until(
      'the orchestrator to serve',
      () => get(`${base}/health`),
      (h) => h.status === 200,
      60_000,
    );
    expect(ready.body).toMatchObject({ status: 'healthy', reasons: [] });
    await until(
      'the log to say it listens',
      async () => orchestrator.output(),
      (o) => o.includes('orchestrator listening'),
    ); // the log is written asynchronously
    const created = await fetch(`${base}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 } }),
    });
    expect(created.status).toBe(201);
  });

  it('stopped (SIGTERM) while it waits for PostgreSQL, it exits 0 at once', async () => {
    const port = await freePort();
    const waiting = spawnWeft(['orchestrator', '--port', String(port)], {
      WEFT_DATABASE_URL: tdb.url.replace('127.0.0.1:5432', `127.0.0.1:${await freePort()}`),
      WEFT_MESSAGING: 'pg',
    });
    try {
      await until(
        '/health to answer',
        () => get(`http://127.0.0.1:${port}/health`),
        (h) => h.body.status === 'starting',
      );
      const started = Date.now();
      await waiting.stop('SIGTERM');
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(waiting.child.exitCode).toBe(0);
    } finally {
      await waiting.stop('SIGKILL');
    }
  });

  it('on SIGTERM ends long-polls (503 shutting_down, Retry-After) and event streams (a shutdown event) and exits 0 within 2 s', async () => {
    expect(base).toBeDefined();
    // No worker runs: the task stays running, so every wait below would last its full minute.
    const created = await fetch(`${base}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 4 } }),
    });
    const { id } = (await created.json()) as { id: string };
    const polls = Array.from({ length: 3 }, () =>
      fetch(`${base}/v1/tasks/${id}/wait?timeout_ms=60000`).then(async (r) => ({
        status: r.status,
        retryAfter: r.headers.get('retry-after'),
        body: (await r.json()) as any,
      })),
    );
    const streams = [readStream(`${base}/v1/tasks/${id}/events`), readStream(`${base}/v1/events`)];
    await Promise.all(streams.map((s) => s.hello));
    await new Promise((r) => setTimeout(r, 300)); // the long-polls are in the server by now

    const started = Date.now();
    await orchestrator.stop('SIGTERM');
    const took = Date.now() - started;
    expect(orchestrator.child.exitCode).toBe(0);
    expect(took).toBeLessThan(2_000);

    for (const poll of await Promise.all(polls)) {
      expect(poll.status).toBe(503);
      expect(poll.retryAfter).toBe('1');
      expect(poll.body.error.code).toBe('shutting_down');
    }
    for (const text of await Promise.all(streams.map((s) => s.done))) {
      expect(text).toContain('retry: 1000');
      expect(text).toContain('event: shutdown');
    }
  });

  it('in process too: closing the API answers a long-poll in flight 503 shutting_down with Retry-After at once', async () => {
    const log = silentLogger();
    const bus = new PgMessageBus(tdb.db, log);
    const app = buildApi({ orchestrator: new Orchestrator({ db: tdb.db, bus, log, processId: 'orchestrator-close-test' }), db: tdb.db, bus, log, ui: false });
    await app.ready();
    const { rows } = await tdb.db.query<{ id: string }>("SELECT id FROM weft.tasks WHERE state = 'running' LIMIT 1");
    const poll = app.inject({ method: 'GET', url: `/v1/tasks/${rows[0]!.id}/wait?timeout_ms=60000` });
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    await app.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    const res = await poll;
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json().error).toMatchObject({ code: 'shutting_down', retry_after_s: 1 });
  });
});
