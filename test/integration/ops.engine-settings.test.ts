/**
 * `weft run` and `weft dashboard` start their orchestrator and workers through
 * startEmbeddedEngine. Their options come from the settings in one place
 * (src/ops/process-options.ts); here WEFT_REDISPATCH_AFTER_MS, which the
 * engine once dropped (30 s whatever was set), must reach its orchestrator:
 * a step message lost on the broker is published again after the set time.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadConfig } from '../../src/shared/config.js';
import { silentLogger } from '../../src/shared/logger.js';
import { connectStore } from '../../src/ops/connect-store.js';
import { startEmbeddedEngine, type EmbeddedEngine } from '../../src/ops/engine.js';
import { deadLetterExchange, deadLetterQueue, stepQueue } from '../../src/messaging/queues.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { AMQP_URL } from '../support/urls.js';

const prefix = `weft_test_${randomBytes(4).toString('hex')}`;
const queue = `${prefix}.${stepQueue('redispatch_probe', 'native')}`;
let database: TestDatabase;
let dir: string;
let engine: EmbeddedEngine | undefined;
let conn: amqp.ChannelModel;
let channel: amqp.Channel;

beforeAll(async () => {
  database = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'weft-engine-settings-'));
  await writeFile(join(dir, 'probe.yaml'), 'namespace: redispatch_probe\nname: one\nversion: 1.0.0\nsteps:\n  - { name: only, handler: probe.only }\n');
  conn = await amqp.connect(AMQP_URL);
  channel = await conn.createChannel();
  // Declared as the bus declares it, so reading it never races the first publish.
  await channel.assertQueue(queue, { durable: true, arguments: { 'x-dead-letter-exchange': deadLetterExchange(prefix), 'x-dead-letter-routing-key': queue } });
});

afterAll(async () => {
  await engine?.stop();
  await channel?.deleteQueue(queue).catch(() => undefined);
  await channel?.deleteQueue(deadLetterQueue(queue)).catch(() => undefined);
  await channel?.deleteExchange(deadLetterExchange(prefix)).catch(() => undefined);
  await conn?.close().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
  await database.drop();
});

/** The next message on the queue, acknowledged (so gone, as a lost one is), as its step id. */
async function takeMessage(): Promise<string> {
  for (;;) {
    const msg = await channel.get(queue, { noAck: true });
    if (msg) return (JSON.parse(msg.content.toString()) as { step_id: string }).step_id;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('startEmbeddedEngine (weft run, weft dashboard)', () => {
  it('WEFT_REDISPATCH_AFTER_MS reaches its orchestrator: a lost step message comes back', async () => {
    const config = loadConfig({
      WEFT_DATABASE_URL: database.url,
      WEFT_MESSAGING: 'rabbitmq',
      WEFT_AMQP_URL: AMQP_URL,
      WEFT_QUEUE_PREFIX: prefix,
      WEFT_REDISPATCH_AFTER_MS: '200',
      WEFT_POLL_INTERVAL_MS: '50',
    });
    const log = silentLogger();
    // No workers: nothing claims the step, so only the orchestrator's sweep can send it again.
    engine = await startEmbeddedEngine(config, log, { templates: dir, handlers: dir, name: 'settings-probe', store: await connectStore(config, log) });
    const { id } = await engine.orchestrator.createTask({ namespace: 'redispatch_probe', name: 'one', context: {} });
    const first = await takeMessage();
    // The default (30 s) would outlast this test's timeout; the setting (200 ms) brings it back well within it.
    expect(await takeMessage()).toBe(first);
    const { rows } = await database.db.query<{ task_id: string }>('SELECT task_id FROM weft.steps WHERE id = $1', [first]);
    expect(rows[0]?.task_id).toBe(id);
  }, 20_000);
});
