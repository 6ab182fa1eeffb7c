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
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { proxiedDatabase, until } from '../support/tcp-proxy.js';
import { capturingLogger } from '../support/log.js';
import { AMQP_URL } from '../support/urls.js';
import { openDatabase } from '../../src/store/database.js';
import { RabbitMessageBus } from '../../src/messaging/rabbitmq.js';
import type { StepConsumer } from '../../src/messaging/types.js';
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

describe('RabbitMQ: a claim that fails', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  let amqpConnection: amqp.ChannelModel;
  let channel: amqp.Channel;
  const queue = () => `${engine.queuePrefix}.step.e2e_linear.native`;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend: 'rabbitmq', url: tdb.url, workers: 0, namespaces: ['e2e_linear'] });
    amqpConnection = await amqp.connect(AMQP_URL);
    channel = await amqpConnection.createChannel();
  });
  afterAll(async () => {
    await amqpConnection?.close().catch(() => undefined);
    await engine?.stop();
    await tdb?.drop();
  });

  /** The next message of a queue (polled; the broker routes asynchronously). */
  const nextMessage = async (name: string): Promise<amqp.GetMessage> =>
    (await until(
      `a message in ${name}`,
      async () => (await channel.get(name, { noAck: true })) || undefined,
      (m) => m !== undefined,
    ))!;

  it('while PostgreSQL is unreachable, the delivered step is held and claimed again after a growing backoff, not handed back at once', async () => {
    const { proxy, url } = await proxiedDatabase(tdb.url);
    const { log, lines } = capturingLogger();
    const db = await openDatabase({ url, log, max: 4 });
    const bus = new RabbitMessageBus({ url: AMQP_URL, prefix: engine.queuePrefix }, db, log);
    const worker = new Worker({ db, bus, log, runner: new NativeRunner(engine.registry), workerId: processId('cut-off'), namespaces: ['e2e_linear'] });
    await worker.start();
    try {
      await proxy.close();
      const orchestrator = engine.orchestrators[0]!;
      const { id } = await orchestrator.createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 } });
      const held = () => lines.filter((l) => l.msg === 'PostgreSQL is unreachable; holding the delivered steps and claiming them again after a backoff');
      await until(
        'four failed claims',
        async () => held().length,
        (n) => n >= 4,
      );
      // Each wait is drawn from a range twice as high as the last (full jitter), so they grow strictly.
      const waits = held()
        .slice(0, 4)
        .map((l) => l.retry_in_ms as number);
      expect(waits).toEqual([...waits].sort((a, b) => a - b));
      expect(new Set(waits).size).toBe(4);
      expect(lines.filter((l) => l.msg === 'claiming delivered steps failed; the messages go back to the broker')).toEqual([]);
      await proxy.open();
      expect(await orchestrator.waitForTask(id, 30_000)).toBe(true);
    } finally {
      await worker.stop(5_000);
      await bus.close();
      await db.close();
      await proxy.close();
    }
  });

  it('a message that is not a step message (not JSON, or an id that is not a UUID) goes to the dead-letter queue with the reason', async () => {
    const worker = await engine.addWorker();
    try {
      const taskId = randomUUID();
      channel.sendToQueue(queue(), Buffer.from(JSON.stringify({ task_id: taskId, step_id: 'not-a-uuid' })));
      channel.sendToQueue(queue(), Buffer.from('{oops'));
      const first = await nextMessage(`${queue()}.dlq`);
      const second = await nextMessage(`${queue()}.dlq`);
      expect(JSON.parse(first.content.toString('utf8'))).toEqual({ task_id: taskId, step_id: 'not-a-uuid' });
      expect(first.properties.headers?.['x-weft-dead-letter-reason']).toBe('not a step message: step_id "not-a-uuid" is not a UUID');
      expect(first.properties.headers?.['x-weft-queue']).toBe(queue());
      expect(second.content.toString('utf8')).toBe('{oops');
      expect(second.properties.headers?.['x-weft-dead-letter-reason']).toBe(
        'not a step message: the body is not a JSON object {"task_id": UUID, "step_id": UUID}',
      );
      // And the worker goes on serving.
      const view = await engine.run('e2e_linear', 'mathematical_sequence', { even_number: 2 });
      expect(view.state).toBe('complete');
    } finally {
      await worker.stop(5_000);
      engine.workers.splice(engine.workers.indexOf(worker), 1);
    }
  });

  it('a message whose claim PostgreSQL refuses on its data is dead-lettered with the reason; the others of its batch are claimed', async () => {
    const { log } = capturingLogger();
    const bus = new RabbitMessageBus({ url: AMQP_URL, prefix: engine.queuePrefix }, engine.db, log);
    const name = 'step.t_claims.native';
    const [good1, bad, good2] = [randomUUID(), randomUUID(), randomUUID()];
    const claimed: string[][] = [];
    // A consumer whose claim fails as PostgreSQL does on a value it cannot take (class 22).
    const consumer: StepConsumer = {
      room: () => 8,
      claimQueued: async () => 0,
      claimDelivered: async (ids) => {
        claimed.push(ids);
        if (ids.includes(bad)) throw Object.assign(new Error('invalid input value for enum weft_state: "x"'), { code: '22P02' });
      },
    };
    const sub = await bus.consume([name], consumer, { prefetch: 8 });
    try {
      for (const id of [good1, bad, good2])
        channel.sendToQueue(`${engine.queuePrefix}.${name}`, Buffer.from(JSON.stringify({ task_id: randomUUID(), step_id: id })));
      const dead = await nextMessage(`${engine.queuePrefix}.${name}.dlq`);
      expect(JSON.parse(dead.content.toString('utf8')).step_id).toBe(bad);
      expect(dead.properties.headers?.['x-weft-dead-letter-reason']).toBe(
        `claiming step ${bad} failed on its data: invalid input value for enum weft_state: "x"`,
      );
      await until(
        'the good ones to be claimed',
        async () => claimed.filter((c) => c.length === 1 && c[0] !== bad).flat(),
        (ids) => ids.length >= 2,
      );
      expect(new Set(claimed.filter((c) => c.length === 1).flat())).toEqual(new Set([good1, bad, good2]));
      // Nothing is left or handed back: the queue is empty.
      expect((await channel.checkQueue(`${engine.queuePrefix}.${name}`)).messageCount).toBe(0);
    } finally {
      await sub.stop();
      await bus.deleteDeclaredQueues();
      await bus.close();
    }
  });
});
