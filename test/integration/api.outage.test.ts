/**
 * The API while a dependency is down: PostgreSQL behind a TCP proxy the test
 * closes (connection refused) or freezes (connects and reads time out), and a
 * broker URL nothing listens on. Every route answers 503 with Retry-After,
 * naming the dependency, never 500 with a raw driver message; /health says
 * `degraded` with the reasons; all of it recovers when the proxy opens again.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { freePort, tcpProxy, until, type TcpProxy } from '../support/tcp-proxy.js';
import { buildApi } from '../../src/api/server.js';
import { Database } from '../../src/store/database.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { RabbitMessageBus } from '../../src/messaging/rabbitmq.js';
import { Orchestrator } from '../../src/orchestration/orchestrator.js';
import { loadTemplateDir } from '../../src/core/template/load.js';
import { packageRoot } from '../../src/shared/paths.js';
import { silentLogger } from '../../src/shared/logger.js';

const TASK = '01a21e54-5be0-76be-97b1-9441a6c8e351';
const ROUTES: Array<[string, string, unknown?]> = [
  ['POST', '/v1/tasks', { namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 } }],
  ['GET', '/v1/tasks'],
  ['GET', `/v1/tasks/${TASK}`],
  ['GET', `/v1/tasks/${TASK}/wait?timeout_ms=100`],
  ['GET', '/v1/tasks/by-key/order-1'],
  ['POST', `/v1/tasks/${TASK}/cancel`],
  ['POST', `/v1/tasks/${TASK}/retry`],
  ['GET', `/v1/tasks/${TASK}/events`],
  ['GET', '/v1/templates'],
  ['GET', '/v1/templates/e2e_linear/mathematical_sequence'],
  ['POST', '/v1/templates', { namespace: 'o', name: 't', version: '1.0.0', steps: [{ name: 'a', handler: 'linear.square' }] }],
  ['GET', '/v1/workers'],
  ['GET', '/v1/stats'],
  ['GET', '/metrics'],
];

function expectDatabase503(res: LightMyRequestResponse, route: string): void {
  expect({ route, status: res.statusCode }).toEqual({ route, status: 503 });
  expect(res.headers['retry-after']).toBe('5');
  const error = res.json().error;
  expect(error).toMatchObject({ code: 'database_unavailable', dependency: 'database', retry_after_s: 5 });
  expect(error.message).toMatch(/^PostgreSQL is unreachable, so this request could not be answered; retry in 5 s/);
}

describe('API while PostgreSQL is unreachable', () => {
  let tdb: TestDatabase;
  let proxy: TcpProxy;
  let db: Database;
  let orchestrator: Orchestrator;
  let api: FastifyInstance;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    proxy = tcpProxy(await freePort());
    await proxy.open();
    const log = silentLogger();
    db = new Database({ url: tdb.url.replace('127.0.0.1:5432', `127.0.0.1:${proxy.port}`), log, max: 4, connectTimeoutMs: 500, queryTimeoutMs: 1_000 });
    const bus = new PgMessageBus(db, log);
    orchestrator = new Orchestrator({ db, bus, log, processId: 'orchestrator-outage-test' });
    await orchestrator.registerTemplates(await loadTemplateDir(join(packageRoot(), 'templates')));
    await orchestrator.start();
    api = buildApi({ orchestrator, db, bus, log, ui: false });
    await api.ready();
  });
  afterAll(async () => {
    await proxy?.close();
    await proxy?.open().catch(() => undefined);
    await api?.close();
    await orchestrator?.stop();
    await db?.close();
    await proxy?.close();
    await tdb?.drop();
  });

  it('answers 503 with Retry-After on every route while connections are refused, and serves again once it is back', async () => {
    expect((await api.inject({ method: 'GET', url: '/v1/tasks' })).statusCode).toBe(200);
    await proxy.close();
    for (const [method, url, payload] of ROUTES) {
      const res = await api.inject({ method: method as 'GET', url, payload: payload as object | undefined });
      expectDatabase503(res, `${method} ${url}`);
      expect(res.json().error.reason).toMatch(/ECONNREFUSED|Connection terminated/);
    }
    // /v1/auth answers from its one-second cache of "are there tokens?", then needs the database too.
    await new Promise((r) => setTimeout(r, 1_100));
    expectDatabase503(await api.inject({ method: 'GET', url: '/v1/auth' }), 'GET /v1/auth');
    const health = await api.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(503);
    expect(health.json()).toMatchObject({ status: 'degraded', database: { ok: false } });
    expect(health.json().reasons[0]).toMatch(/^database: PostgreSQL is unreachable: .*ECONNREFUSED/);

    await proxy.open();
    const created = await until(
      'the API to serve again',
      () => api.inject({ method: 'POST', url: '/v1/tasks', payload: ROUTES[0]![2] as object }),
      (r) => r.statusCode === 201,
    );
    expect(created.json().state).toBe('running');
    expect((await api.inject({ method: 'GET', url: '/health' })).json()).toMatchObject({ status: 'healthy', reasons: [] });
  });

  it('answers 503 within the connect and read timeouts while PostgreSQL does not answer at all (frozen)', async () => {
    proxy.freeze();
    try {
      for (const [method, url, payload] of ROUTES.filter(([, u]) => !u.endsWith('/events'))) {
        const started = Date.now();
        const res = await api.inject({ method: method as 'GET', url, payload: payload as object | undefined });
        expectDatabase503(res, `${method} ${url}`);
        expect(res.json().error.reason).toMatch(/timeout exceeded when trying to connect|Query read timeout|Connection terminated/);
        expect(Date.now() - started).toBeLessThan(10_000);
      }
      const started = Date.now();
      const health = await api.inject({ method: 'GET', url: '/health' });
      expect(health.statusCode).toBe(503);
      expect(health.json().status).toBe('degraded');
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await proxy.close();
      await proxy.open();
    }
  });
});

describe('API while the broker is unreachable', () => {
  let tdb: TestDatabase;
  let db: Database;
  let bus: RabbitMessageBus;
  let orchestrator: Orchestrator;
  let api: FastifyInstance;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    const log = silentLogger();
    db = new Database({ url: tdb.url, log, max: 4 });
    bus = new RabbitMessageBus({ url: `amqp://guest:guest@127.0.0.1:${await freePort()}`, prefix: 'weft_api_outage' }, db, log);
    orchestrator = new Orchestrator({ db, bus, log, processId: 'orchestrator-broker-outage-test' });
    await orchestrator.registerTemplates(await loadTemplateDir(join(packageRoot(), 'templates')));
    api = buildApi({ orchestrator, db, bus, log, ui: false });
    await api.ready();
  });
  afterAll(async () => {
    await api?.close();
    await bus?.close();
    await db?.close();
    await tdb?.drop();
  });

  it('says so: /health degraded naming the broker, 503 broker_unavailable where a route needs it; tasks are still accepted (the outbox keeps their messages)', async () => {
    const health = await api.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(503);
    expect(health.headers['retry-after']).toBe('5');
    expect(health.json()).toMatchObject({ status: 'degraded', database: { ok: true }, messaging: { ok: false, backend: 'rabbitmq' } });
    expect(health.json().reasons).toEqual([
      expect.stringMatching(/^broker: cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+: .*ECONNREFUSED/),
    ]);

    const stats = await api.inject({ method: 'GET', url: '/v1/stats' });
    expect(stats.statusCode).toBe(503);
    expect(stats.headers['retry-after']).toBe('5');
    expect(stats.json().error).toMatchObject({ code: 'broker_unavailable', dependency: 'broker' });
    expect(stats.json().error.message).toBe('the message broker (RabbitMQ) is unavailable or blocking publishers; retry in 5 s');

    const created = await api.inject({ method: 'POST', url: '/v1/tasks', payload: ROUTES[0]![2] as object });
    expect(created.statusCode).toBe(201);
    const { rows } = await db.query('SELECT count(*)::int AS n FROM weft.outbox');
    expect(rows[0].n).toBe(1);
  });
});
