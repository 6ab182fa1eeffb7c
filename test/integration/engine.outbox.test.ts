/**
 * RabbitMQ: a process that commits a statement which enqueued steps, then dies
 * before it publishes their messages, leaves them in weft.outbox. The
 * orchestrator's outbox sweep publishes them (after a 1 s grace), so the task
 * goes on without waiting for the much later redispatch of unclaimed steps.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { results, startEngine, type Engine } from '../support/engine.js';
import { createTask, getTaskView } from '../../src/store/tasks.js';
import { initialSteps } from '../../src/core/plan.js';
import { loadTemplateFile } from '../../src/core/template/load.js';
import { packageRoot } from '../../src/shared/paths.js';
import { registerTemplate } from '../../src/store/templates.js';
import { claimQueued } from '../../src/store/claim.js';
import { finishSteps } from '../../src/store/finish.js';
import { Orchestrator } from '../../src/orchestration/orchestrator.js';
import type { MessageBus } from '../../src/messaging/types.js';
import { deliveryFor } from '../../src/store/delivery.js';
import { silentLogger } from '../../src/shared/logger.js';
import { processId } from '../../src/shared/ids.js';
import { freePort, tcpProxy, until } from '../support/tcp-proxy.js';
import { AMQP_URL } from '../support/urls.js';
import { RabbitMessageBus } from '../../src/messaging/rabbitmq.js';

let tdb: TestDatabase;
let engine: Engine;

beforeAll(async () => {
  tdb = await createTestDatabase();
  engine = await startEngine({ backend: 'rabbitmq', url: tdb.url });
});
afterAll(async () => {
  await engine?.stop();
  await tdb?.drop();
});

describe('a crash between the commit and the RabbitMQ publish', () => {
  it('the outbox sweep publishes what was left behind; the step is not dispatched a second time', async () => {
    const linear = await loadTemplateFile(join(packageRoot(), 'templates', 'linear.yaml'));
    // The statement commits with its outbox row, and its process "dies": nothing is published.
    const { taskId } = await createTask(
      engine.db,
      { namespace: linear.namespace, name: linear.name, version: linear.version, context: { even_number: 6 }, steps: initialSteps(linear) },
      'crashed-before-publish',
      'outbox',
    );
    const { rows: left } = await engine.db.query<{ n: number }>('SELECT count(*)::int AS n FROM weft.outbox');
    expect(left[0]!.n).toBeGreaterThan(0);

    const ended = await engine.orchestrators[0]!.waitForTask(taskId, 20_000);
    expect(ended).toBe(true);
    const view = (await getTaskView(engine.db, taskId))!;
    expect(view.state).toBe('complete');
    expect(results(view).linear_step_4).toBe(2821109907456);

    // Published by the sweep, not rescued by the redispatch of unclaimed steps (an enqueued → enqueued transition).
    const { rows: redispatched } = await engine.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM weft.step_transitions WHERE task_id = $1 AND from_state = 'enqueued' AND to_state = 'enqueued'`,
      [taskId],
    );
    expect(redispatched[0]!.n).toBe(0);
    const { rows: after } = await engine.db.query<{ n: number }>('SELECT count(*)::int AS n FROM weft.outbox');
    expect(after[0]!.n).toBe(0);
  });
});

/**
 * A broker that takes messages but never confirms them (it blocks publishers
 * on a disk or memory alarm): the orchestrator's outbox sweep waits for
 * those confirms, and used to hold up every other sweep and its heartbeat
 * meanwhile (issue 15). A bus whose republish hangs stands in for that
 * broker: only the orchestrator's scheduling of its sweeps is under test.
 */
describe('an outbox publish that hangs', () => {
  it('holds up neither the heartbeat nor the lease and retry sweeps, and is not started again while it hangs', async () => {
    // A database of its own: the engine of the test above would sweep this one's rows too.
    const own = await createTestDatabase();
    const db = own.db;
    const calls: Array<{ messages: number; timeoutMs?: number }> = [];
    let release!: () => void;
    const hanging = new Promise<void>((r) => (release = r));
    const bus: MessageBus = {
      backend: 'rabbitmq',
      delivery: deliveryFor('outbox'),
      deliver: () => undefined,
      republish: async (messages, options) => {
        calls.push({ messages: messages.length, timeoutMs: options?.timeoutMs });
        await hanging;
      },
      consume: () => Promise.reject(new Error('not a worker')),
      depth: async () => ({}),
      health: async () => ({ ok: true, backend: 'rabbitmq', detail: 'stand-in' }),
      close: async () => undefined,
    };
    const pid = processId('orch-blocked');
    const orchestrator = new Orchestrator({ db, bus, log: silentLogger(), processId: pid, pollIntervalMs: 100, leaseMs: 300 });
    // An outbox row left behind, and a step whose worker vanished (never registered) long ago.
    const linear = await loadTemplateFile(join(packageRoot(), 'templates', 'linear.yaml'));
    await registerTemplate(db, linear);
    await createTask(
      db,
      { namespace: linear.namespace, name: linear.name, version: linear.version, context: { even_number: 6 }, steps: initialSteps(linear) },
      'left-behind',
      'outbox',
    );
    await db.query(`UPDATE weft.outbox SET created_at = now() - interval '1 minute'`);
    const lost = (await claimQueued(db, 'vanished-worker', ['step.e2e_linear.native'], 1)).claimed[0]!;
    await db.query(`UPDATE weft.steps SET started_at = now() - interval '1 minute' WHERE id = $1`, [lost.id]);
    // And a step whose retry is due.
    await createTask(
      db,
      { namespace: linear.namespace, name: linear.name, version: linear.version, context: { even_number: 2 }, steps: initialSteps(linear) },
      'x',
      'outbox',
    );
    const failing = (await claimQueued(db, 'failing-worker', ['step.e2e_linear.native'], 1)).claimed[0]!;
    const error = { language: 'typescript', class: 'Boom', message: 'no', backtrace: [], permanent: false, kind: 'raised' };
    await finishSteps(db, 'failing-worker', [{ id: failing.id, attempt: failing.attempt, ok: false, error, retryMs: 0, durationMs: 1 }], {
      queues: [],
      room: 0,
      claimQueued: false,
      outbox: true,
    });
    await orchestrator.start();
    try {
      await until(
        'the outbox sweep to publish',
        async () => calls.length,
        (n) => n >= 1,
      );
      // While that publish hangs: the heartbeat goes on, and the lease sweep gives the lost step back.
      const beats = new Set<number>();
      await until(
        'five heartbeats',
        async () => {
          const { rows } = await db.query<{ at: Date }>('SELECT heartbeat_at AS at FROM weft.processes WHERE id = $1', [pid]);
          beats.add(rows[0]!.at.getTime());
          return beats.size;
        },
        (n) => n >= 5,
      );
      const state = async (id: string) =>
        (await db.query<{ state: string; losses: number }>('SELECT state, losses FROM weft.steps WHERE id = $1', [id])).rows[0];
      expect(await state(lost.id)).toEqual({ state: 'enqueued', losses: 1 });
      expect(await state(failing.id)).toEqual({ state: 'enqueued', losses: 0 });
      expect(calls).toEqual([{ messages: 1, timeoutMs: 2_000 }]);
      release();
      await until(
        'the next outbox sweep',
        async () => calls.length,
        (n) => n >= 2,
      );
    } finally {
      release();
      await orchestrator.stop();
      await own.drop();
    }
  });
});

describe('RabbitMQ that stops answering', () => {
  it("an outbox sweep's publish gives up after the wait it was given, saying so", async () => {
    const port = await freePort();
    const proxy = tcpProxy(port, { host: '127.0.0.1', port: Number(new URL(AMQP_URL).port || 5672) });
    await proxy.open();
    const url = new URL(AMQP_URL);
    url.port = String(port);
    const bus = new RabbitMessageBus({ url: url.toString(), prefix: engine.queuePrefix }, engine.db, silentLogger());
    const message = (id: string) => ({ id, queue: 'step.t_frozen.native', body: { task_id: randomUUID(), step_id: randomUUID() } });
    try {
      await bus.republish([message('1')], { timeoutMs: 5_000 });
      // The broker takes the bytes and never answers, as one blocking publishers does.
      proxy.freeze();
      await expect(bus.republish([message('2')], { timeoutMs: 300 })).rejects.toThrow(/^RabbitMQ did not confirm 1 step message\(s\) within 300 ms/);
    } finally {
      await Promise.all([bus.close(), proxy.close()]);
    }
  });
});
