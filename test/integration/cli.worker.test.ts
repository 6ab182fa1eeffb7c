/**
 * `weft worker` as a real process when its dependencies misbehave (issue 9):
 * started while PostgreSQL is unreachable it waits, saying why, instead of
 * exiting; its health port is bound before it claims anything; /health names
 * the database in use.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { freePort, proxiedDatabase, tcpProxy, until } from '../support/tcp-proxy.js';
import { spawnWeft, type WeftProcess } from '../support/weft-process.js';
import { startEngine } from '../support/engine.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrate.js';
import { silentLogger } from '../../src/shared/logger.js';
import { registerTemplate } from '../../src/store/templates.js';
import { createTask } from '../../src/store/tasks.js';
import { initialSteps } from '../../src/core/plan.js';

async function health(port: number): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe('weft worker and its dependencies', () => {
  let tdb: TestDatabase;
  let db: Database;
  const started: WeftProcess[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase();
    db = await openDatabase({ url: tdb.url, log: silentLogger(), max: 2 });
    await migrate(db, silentLogger());
  });
  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop('SIGKILL')));
    await db?.close();
    await tdb?.drop();
  });

  it('started while PostgreSQL is unreachable, it waits (503 "starting", saying why) and serves once it is back', async () => {
    const dbPort = await freePort();
    const healthPort = await freePort();
    const proxied = tdb.url.replace('127.0.0.1:5432', `127.0.0.1:${dbPort}`);
    expect(proxied).not.toBe(tdb.url);
    const worker = spawnWeft(['worker', '--runtime', 'native', '--handlers', 'handlers/typescript', '--port', String(healthPort)], {
      WEFT_DATABASE_URL: proxied,
      WEFT_LOG_LEVEL: 'info',
      WEFT_LOG_FORMAT: 'json',
    });
    started.push(worker);

    const waiting = await until(
      '/health to answer',
      () => health(healthPort),
      (h) => h.body.status === 'starting' && /ECONNREFUSED/.test(h.body.reason),
    );
    expect(waiting.status).toBe(503);
    expect(waiting.body).toMatchObject({ status: 'starting', runtime: 'native', waiting_for: 'database' });
    await until(
      'the log to say why',
      async () => worker.output(),
      (o) => o.includes('PostgreSQL is unreachable; waiting for it'),
    );
    expect(worker.child.exitCode).toBeNull();

    const proxy = tcpProxy(dbPort);
    await proxy.open();
    try {
      const ready = await until(
        'the worker to start',
        () => health(healthPort),
        (h) => h.status === 200,
        60_000,
      );
      const name = new URL(tdb.url).pathname.slice(1);
      expect(ready.body).toMatchObject({ status: 'healthy', database: { host: '127.0.0.1', port: dbPort, database: name, source: 'url' } });
      expect(JSON.stringify(ready.body)).not.toMatch(/password/i);
      expect(worker.output()).toContain(`using PostgreSQL ${name} on 127.0.0.1:${dbPort}`);
      await worker.stop('SIGTERM');
      expect(worker.child.exitCode).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('cut off from PostgreSQL while it holds an outcome, its /health says degraded and why; it writes the outcome once the database is back', async () => {
    const def = parseTemplate(
      'namespace: t_health\nname: one_second\nversion: 1.0.0\nsteps:\n  - { name: only, handler: crash.one_second }\n',
      'one_second.yaml',
    );
    await registerTemplate(db, def);
    const healthPort = await freePort();
    const { proxy, url } = await proxiedDatabase(tdb.url);
    const worker = spawnWeft(
      ['worker', '--runtime', 'native', '--handlers', 'test/integration/fixtures/crash-handlers', '--namespaces', 't_health', '--port', String(healthPort)],
      { WEFT_DATABASE_URL: url },
    );
    started.push(worker);
    try {
      await until(
        'the worker to start',
        () => health(healthPort),
        (h) => h.status === 200,
        60_000,
      );
      const { taskId } = await createTask(
        db,
        { namespace: def.namespace, name: def.name, version: def.version, context: {}, steps: initialSteps(def) },
        'test',
        'wake',
      );
      await until(
        'the step to run',
        async () => (await db.query(`SELECT state FROM weft.steps WHERE task_id = $1`, [taskId])).rows[0]?.state,
        (s) => s === 'running',
      );
      // The handler takes a second; its outcome then cannot be written.
      await proxy.close();
      const degraded = await until(
        '/health to say degraded',
        () => health(healthPort),
        (h) => h.body.status === 'degraded',
      );
      expect(degraded.status).toBe(503);
      expect(degraded.body.reason).toMatch(
        /^writing step outcomes failed \d+ times in a row since \S+ \(.*ECONNREFUSED.*\); 1 outcome\(s\) wait and are retried with backoff$/,
      );
      await proxy.open();
      await until(
        'the task to complete',
        async () => (await db.query(`SELECT state FROM weft.tasks WHERE id = $1`, [taskId])).rows[0]?.state,
        (s) => s === 'complete',
      );
      expect(
        (
          await until(
            '/health to say healthy',
            () => health(healthPort),
            (h) => h.status === 200,
          )
        ).body.status,
      ).toBe('healthy');
    } finally {
      await worker.stop('SIGTERM');
      await proxy.close();
      await db.query('DELETE FROM weft.processes'); // as if it had never been: the next test counts rows
    }
  });

  it('a Python worker whose handler is stuck answers /health degraded and goes on; too many stuck and it exits 70 for its supervisor', async () => {
    const stubborn = parseTemplate(
      'namespace: t_stuck\nname: stubborn\nversion: 1.0.0\nsteps:\n' +
        '  - { name: run, handler: overlap.stubborn, runtime: python, timeout_ms: 200, retry: { max_attempts: 1 } }\n',
      'stubborn.yaml',
    );
    const quick = parseTemplate(
      'namespace: t_stuck\nname: quick\nversion: 1.0.0\nsteps:\n  - { name: run, handler: overlap.echo, runtime: python }\n',
      'quick.yaml',
    );
    const own = await createTestDatabase(); // its worker's process row must not meet the other tests'
    const engine = await startEngine({ backend: 'pg', url: own.url, templates: [stubborn, quick], namespaces: ['t_stuck'], workers: 0 });
    const healthPort = await freePort();
    const worker = spawnWeft(
      [
        'worker',
        '--runtime',
        'python',
        '--handlers',
        'test/fixtures/overlap-handlers/python',
        '--namespaces',
        't_stuck',
        '--concurrency',
        '4',
        '--port',
        String(healthPort),
      ],
      { WEFT_DATABASE_URL: own.url, WEFT_BRIDGE_GRACE_MS: '300', WEFT_BRIDGE_MAX_STUCK: '2', WEFT_LOG_FORMAT: 'json' },
    );
    started.push(worker);
    try {
      await until(
        'the worker to serve',
        () => health(healthPort).catch(() => undefined),
        (h) => h?.status === 200,
        60_000,
      );
      const orchestrator = engine.orchestrators[0]!;
      await orchestrator.createTask({ namespace: 't_stuck', name: 'stubborn', context: { seconds: 60 } });
      const degraded = await until(
        '/health to say degraded',
        () => health(healthPort),
        (h) => h.body.status === 'degraded',
      );
      expect(degraded.status).toBe(200);
      expect(degraded.body.handlers).toEqual({ threads: 4, running: 1, stuck: 1 });
      expect(degraded.body.reason).toBe('1 handler(s) stuck: they ignored a timeout or cancel; their threads were replaced');
      await until(
        'the warning naming the stuck handler',
        async () => worker.output(),
        (o) =>
          o.includes('a handler is stuck: handler \\"overlap.stubborn\\" ignored its timeout of 200 ms') &&
          o.includes('(1 stuck now; at 2 the worker restarts'),
      );
      // It goes on serving.
      expect((await engine.run('t_stuck', 'quick', { id: 1 })).state).toBe('complete');
      // A second stuck handler reaches WEFT_BRIDGE_MAX_STUCK: the worker drains and exits 70.
      await orchestrator.createTask({ namespace: 't_stuck', name: 'stubborn', context: { seconds: 60 } });
      await new Promise<void>((r) => (worker.child.exitCode !== null ? r() : worker.child.once('exit', () => r())));
      expect(worker.child.exitCode).toBe(70);
      expect(worker.output()).toContain('2 handlers are stuck at once (the limit is 2, WEFT_BRIDGE_MAX_STUCK), so restart this worker process');
    } finally {
      await worker.stop('SIGKILL');
      await engine.stop();
      await own.drop();
    }
  });

  it('a health port already taken stops it before it registers or claims anything', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const worker = spawnWeft(['worker', '--runtime', 'native', '--handlers', 'handlers/typescript', '--port', String(port)], {
        WEFT_DATABASE_URL: tdb.url,
      });
      started.push(worker);
      await new Promise<void>((r) => worker.child.once('exit', () => r()));
      expect(worker.child.exitCode).not.toBe(0);
      expect(worker.output()).toContain('EADDRINUSE');
      const { rows } = await db.query('SELECT id FROM weft.processes');
      expect(rows).toEqual([]);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});
