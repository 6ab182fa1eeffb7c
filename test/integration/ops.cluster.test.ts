/**
 * ClusterSupervisor with a template directory and handler directories of its
 * own (what weft bench's I/O tier starts), on RabbitMQ: the cluster runs
 * those templates with those handlers, and on stop it deletes the queues of
 * every namespace its workers served, including those of templates another
 * cluster registered in the same database.
 */
import amqp from 'amqplib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { AMQP_URL } from '../support/urls.js';
import { freeClusterBase } from '../support/ports.js';
import { ClusterSupervisor } from '../../src/ops/cluster.js';
import { loadTemplateDir } from '../../src/core/template/load.js';
import { registerTemplate } from '../../src/store/templates.js';
import { stepQueue } from '../../src/messaging/queues.js';
import { requestJson } from '../../src/shared/http-json.js';
import { silentLogger } from '../../src/shared/logger.js';
import { packageRoot } from '../../src/shared/paths.js';

const IO = join(packageRoot(), 'bench', 'io');

async function queueExists(name: string): Promise<boolean> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined); // a missing queue closes the channel with 404
    return await ch.checkQueue(name).then(
      () => true,
      () => false,
    );
  } finally {
    await conn.close().catch(() => undefined);
  }
}

describe('a cluster with its own templates and handlers, on RabbitMQ', () => {
  let db: TestDatabase;
  let stateDir: string;
  let sup: ClusterSupervisor;
  let prefix: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    // The database already holds the shipped templates, as a bench database does when the I/O tier starts.
    for (const def of await loadTemplateDir(join(packageRoot(), 'templates'))) await registerTemplate(db.db, def);
    stateDir = mkdtempSync(join(tmpdir(), 'weft-cluster-'));
    const env: NodeJS.ProcessEnv = { ...process.env, WEFT_DATABASE_URL: db.url, WEFT_AMQP_URL: AMQP_URL, WEFT_LOG_LEVEL: 'warn' };
    delete env.WEFT_QUEUE_PREFIX; // a private prefix, which the cluster deletes on stop
    sup = new ClusterSupervisor(
      {
        orchestrators: 1,
        workers: { native: 1 },
        backend: 'rabbitmq',
        basePort: await freeClusterBase({ orchestrators: 1, workers: { native: 1 } }),
        stateDir,
        env,
        templates: join(IO, 'templates'),
        handlers: { native: join(IO, 'handlers', 'typescript') },
      },
      silentLogger(),
    );
    await sup.start();
    prefix = sup.snapshot().queue_prefix!;
  }, 120_000);

  afterAll(async () => {
    await sup?.stop();
    await db?.drop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("registers the given templates and runs them with the given runtime's handlers", async () => {
    const base = sup.orchestratorUrls()[0]!;
    const created = await requestJson('POST', `${base}/v1/tasks`, { body: { namespace: 'bench_io_native', name: 'sleep', context: { id: 'c-1', ms: 1 } } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const done = await requestJson('GET', `${base}/v1/tasks/${created.body.id}/wait?timeout_ms=20000`, { timeoutMs: 30_000 });
    expect(done.body.state).toBe('complete');
    expect(done.body.steps[0].result).toEqual({ id: 'c-1', slept_ms: 1 });
  });

  it("on stop, deletes the queues of its templates' namespaces and of the database's other namespaces its worker served", async () => {
    const queues = ['bench_io_native', 'e2e_linear'].map((ns) => `${prefix}.${stepQueue(ns, 'native')}`);
    for (const q of queues) expect(await queueExists(q), q).toBe(true);
    await sup.stop();
    for (const q of queues) expect(await queueExists(q), q).toBe(false);
  });
});
