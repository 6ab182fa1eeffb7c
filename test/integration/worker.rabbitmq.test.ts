/**
 * A worker on RabbitMQ (issue 15). A worker of one slot (a Python or Ruby
 * worker, or any worker at concurrency 1) started with a backlog held one
 * delivery while its slot was busy and then idled for good: the wake-up
 * after a finish was dropped while it was still attaching its queues, and
 * with a prefetch of 1 the broker sent nothing more. And a claim that failed
 * was handed back to the broker at once, forever: ~1,500 redeliveries a
 * second while PostgreSQL was unreachable, and a malformed message looped
 * instead of going to the dead-letter queue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { until } from '../support/tcp-proxy.js';
import { capturingLogger } from '../support/log.js';
import { AMQP_URL } from '../support/urls.js';
import { openDatabase } from '../../src/store/database.js';
import { RabbitMessageBus } from '../../src/messaging/rabbitmq.js';
import { Worker } from '../../src/worker/worker.js';
import { NativeRunner } from '../../src/worker/native-runner.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { processId } from '../../src/shared/ids.js';

describe('RabbitMQ: a worker of one slot started on a backlog', () => {
  let tdb: TestDatabase;
  let engine: Engine;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    // Queues attached after the backlog's (as a worker serving every namespace of its runtime has) keep
    // consume() busy while the first deliveries already arrive and run.
    const idle = Array.from({ length: 30 }, (_, i) => `idle_${String(i).padStart(2, '0')}`);
    engine = await startEngine({ backend: 'rabbitmq', url: tdb.url, workers: 0, concurrency: 1, namespaces: ['e2e_linear', ...idle] });
  });
  afterAll(async () => {
    await engine?.stop();
    await tdb?.drop();
  });

  it('completes every task of the backlog', async () => {
    const orchestrator = engine.orchestrators[0]!;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await orchestrator.createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 } })).id);
    await until(
      'the step messages to be published',
      async () => (await engine.db.query('SELECT count(*)::int AS n FROM weft.outbox')).rows[0].n,
      (n) => n === 0,
    );
    await engine.addWorker();
    for (const id of ids) expect(await orchestrator.waitForTask(id, 20_000)).toBe(true);
  });

  it('completes every task of a backlog in a namespace it starts serving later', async () => {
    const orchestrator = engine.orchestrators[0]!;
    // Many namespaces of its runtime: taking on a new one re-attaches all their queues, which keeps consume() busy.
    await orchestrator.registerTemplates(
      Array.from({ length: 30 }, (_, i) =>
        parseTemplate(
          `namespace: quiet_${String(i).padStart(2, '0')}\nname: quiet\nversion: 1.0.0\nsteps:\n  - { name: one, handler: linear.square, runtime: native }\n`,
          'quiet.yaml',
        ),
      ),
    );
    const { log, lines } = capturingLogger();
    const db = await openDatabase({ url: tdb.url, log, max: 4 });
    const bus = new RabbitMessageBus({ url: AMQP_URL, prefix: engine.queuePrefix }, db, log);
    // No namespaces given: it serves every namespace with a native step, and looks for new ones every 3 s.
    const worker = new Worker({
      db,
      bus,
      log,
      runner: new NativeRunner(engine.registry),
      workerId: processId('late'),
      concurrency: 1,
      namespaceRefreshMs: 3_000,
    });
    await worker.start();
    try {
      // A namespace sorted before the others, so its queue is attached first.
      const late = parseTemplate(
        'namespace: a_late\nname: chain\nversion: 1.0.0\nruntime: native\nsteps:\n  - { name: one, handler: linear.square }\n  - { name: two, handler: linear.square, depends_on: [one] }\n',
        'late.yaml',
      );
      await orchestrator.registerTemplates([late]);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await orchestrator.createTask({ namespace: 'a_late', name: 'chain', context: { even_number: 2 } })).id);
      await until(
        'the step messages to be published',
        async () => (await engine.db.query('SELECT count(*)::int AS n FROM weft.outbox')).rows[0].n,
        (n) => n === 0,
      );
      const backlogReady = lines.length;
      for (const id of ids) expect(await orchestrator.waitForTask(id, 20_000)).toBe(true);
      // The scenario held: the worker took the namespace on after its backlog was waiting.
      const serving = lines.findIndex((l) => l.msg === 'serving new namespaces' && (l.namespaces as string[]).includes('a_late'));
      expect(serving).toBeGreaterThanOrEqual(backlogReady);
    } finally {
      await worker.stop(5_000);
      await bus.deleteDeclaredQueues().catch(() => undefined);
      await bus.close();
      await db.close();
    }
  });
});
