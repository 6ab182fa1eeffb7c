/**
 * The PostgreSQL message queue (src/messaging/pg.ts, WEFT_MESSAGING=pg): NOTIFY wake-ups, SKIP LOCKED
 * claims, the visibility timeout, dead letters, and surviving the loss of the LISTEN connection.
 *
 * Every bus gets its own pool (as a separate process would) and every test its own queue names.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { PgMessageBus, type PgBusOptions } from '../../src/messaging/pg.js';
import type { Delivery, Subscription } from '../../src/messaging/types.js';
import { silentLogger } from '../../src/shared/logger.js';
import { capturingLogger } from '../support/log.js';

let tdb: TestDatabase;
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
});
afterAll(async () => {
  await tdb?.drop();
});

function queueName(what: string): string {
  return `test.${what}.${randomBytes(3).toString('hex')}`;
}


interface TestBus {
  bus: PgMessageBus;
  db: Database;
  /** Emits 'receive' (row count) after every receive query of this bus's consumers has returned. */
  receives: EventEmitter;
}

/** A bus on its own pool; its receive queries are observed, so a test can wait for an idle (empty) receive. */
async function newBus(options: PgBusOptions, log: Logger = silentLogger()): Promise<TestBus> {
  const db = await openDatabase({ url: tdb.url, log, max: 5 });
  const receives = new EventEmitter();
  const query = db.query.bind(db);
  db.query = (async (text: string, values?: unknown[]) => {
    const result = await query(text, values);
    if (text.includes('FOR UPDATE SKIP LOCKED')) receives.emit('receive', result.rowCount ?? 0);
    return result;
  }) as Database['query'];
  const bus = new PgMessageBus(db, log, options);
  closers.push(async () => {
    await bus.close();
    await db.close();
  });
  return { bus, db, receives };
}

/** Resolves after the next receive that returned exactly `rows` messages. */
function nextReceiveOf(tb: TestBus, rows: number): Promise<void> {
  return new Promise((resolve) => {
    const on = (n: number) => {
      if (n !== rows) return;
      tb.receives.off('receive', on);
      resolve();
    };
    tb.receives.on('receive', on);
  });
}

function nextEmptyReceive(tb: TestBus): Promise<void> {
  return new Promise((resolve) => {
    const on = (n: number) => {
      if (n !== 0) return;
      tb.receives.off('receive', on);
      resolve();
    };
    tb.receives.on('receive', on);
  });
}

async function consume(tb: TestBus, queues: string[], onMessage: (d: Delivery) => void, prefetch = 10): Promise<Subscription> {
  const sub = await tb.bus.consume(queues, onMessage, { prefetch });
  closers.push(() => sub.stop());
  return sub;
}

/** Resolves with `what()` once it is truthy; fails (naming `label`) after `ms`. Polls a condition that has no event. */
async function until<T>(label: string, what: () => T | Promise<T>, ms = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A promise for the next delivery, failing after `ms` (the bus's fallback poll is longer, so only a wake-up meets it). */
function deliveryQueue() {
  const got: Delivery[] = [];
  const waiters: Array<(d: Delivery) => void> = [];
  return {
    got,
    onMessage(d: Delivery) {
      got.push(d);
      waiters.shift()?.(d);
    },
    next(label: string, ms = 15_000): Promise<Delivery> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}`)), ms);
        waiters.push((d) => {
          clearTimeout(timer);
          resolve(d);
        });
      });
    },
  };
}

async function listenBackends(): Promise<number[]> {
  const { rows } = await tdb.db.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE application_name = 'weft-listen' AND datname = current_database() ORDER BY pid`,
  );
  return rows.map((r) => r.pid);
}

describe('PgMessageBus', () => {
  it('publish → consume is woken by NOTIFY, not the poll (poll interval 60 s)', async () => {
    const q = queueName('notify');
    const consumer = await newBus({ pollIntervalMs: 60_000 });
    const publisher = await newBus({});
    const dq = deliveryQueue();
    const idle = nextEmptyReceive(consumer);
    await consume(consumer, [q], (d) => dq.onMessage(d));
    await idle; // the consumer found nothing and now sleeps until a wake-up (or 60 s)

    for (const n of [1, 2]) {
      // A receive that returns fewer rows than the consumer has room for is
      // followed by sleep (until a wake-up or the 60 s poll).
      const partial = nextReceiveOf(consumer, 1);
      const next = dq.next(`message ${n} via NOTIFY`);
      await publisher.bus.publish([{ queue: q, body: { n } }]);
      const d = await next;
      expect(d).toMatchObject({ queue: q, body: { n }, deliveries: 1 });
      d.ack();
      await partial; // asleep again before the next publish
    }
    // A notification for another queue does not deliver anything here.
    await publisher.bus.publish([{ queue: queueName('other'), body: { n: 3 } }]);
    await until('acks flushed', async () => (await consumer.bus.depth([q]))[q] === 0);
    expect(dq.got.map((d) => d.body)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('FOR UPDATE SKIP LOCKED: 500 messages, two consumers, each message delivered exactly once', async () => {
    const q = queueName('skip');
    const a = await newBus({ pollIntervalMs: 200 });
    const b = await newBus({ pollIntervalMs: 200 });
    const publisher = await newBus({});
    await publisher.bus.publish(Array.from({ length: 500 }, (_, n) => ({ queue: q, body: { n } })));
    const seen: Array<{ n: number; by: string; deliveries: number }> = [];
    const handler = (by: string) => (d: Delivery) => {
      seen.push({ n: (d.body as { n: number }).n, by, deliveries: d.deliveries });
      // Ack on a later tick, so both consumers hold messages at the same time.
      setImmediate(() => d.ack());
    };
    await Promise.all([consume(a, [q], handler('a'), 16), consume(b, [q], handler('b'), 16)]);
    await until('500 deliveries', () => seen.length >= 500);
    await until('queue drained', async () => (await publisher.bus.depth([q]))[q] === 0);
    const ns = seen.map((s) => s.n).sort((x, y) => x - y);
    expect(ns).toEqual(Array.from({ length: 500 }, (_, n) => n));
    expect(seen.every((s) => s.deliveries === 1)).toBe(true);
    expect(seen).toHaveLength(500);
  });

  it('an un-acked message is delivered again after the visibility timeout, then acked for good', async () => {
    const q = queueName('visibility');
    const tb = await newBus({ visibilityMs: 300, pollIntervalMs: 50 });
    const dq = deliveryQueue();
    await consume(tb, [q], (d) => dq.onMessage(d));
    const first = dq.next('first delivery');
    await tb.bus.publish([{ queue: q, body: { job: 'x' } }]);
    expect(await first).toMatchObject({ queue: q, body: { job: 'x' }, deliveries: 1 });
    // Not acked: it must come back once hidden for 300 ms.
    const again = await dq.next('redelivery after the visibility timeout');
    expect(again).toMatchObject({ queue: q, body: { job: 'x' }, deliveries: 2 });
    again.ack();
    await until('acked message deleted', async () => (await tb.bus.depth([q]))[q] === 0);
    const { rows } = await tdb.db.query('SELECT count(*)::int AS n FROM weft.dead_letters WHERE queue = $1', [q]);
    expect(rows[0].n).toBe(0);
    expect(dq.got).toHaveLength(2);
  });

  it('nack(false, reason) moves the message to weft.dead_letters with the reason', async () => {
    const q = queueName('nack');
    const { log, lines } = capturingLogger();
    const tb = await newBus({ pollIntervalMs: 100 }, log);
    const dq = deliveryQueue();
    await consume(tb, [q], (d) => dq.onMessage(d));
    const first = dq.next('delivery');
    await tb.bus.publish([{ queue: q, body: { bad: true } }]);
    (await first).nack(false, 'body is not a step message');
    const dead = await until('dead letter row', async () => {
      const { rows } = await tdb.db.query('SELECT queue, body, deliveries, reason FROM weft.dead_letters WHERE queue = $1', [q]);
      return rows[0];
    });
    expect(dead).toEqual({ queue: q, body: { bad: true }, deliveries: 1, reason: 'body is not a step message' });
    expect((await tb.bus.depth([q]))[q]).toBe(0);
    expect(lines.some((l) => l.msg === 'message moved to weft.dead_letters' && l.reason === 'body is not a step message')).toBe(true);
  });

  it('nack(true) gives the message back: it is delivered again', async () => {
    const q = queueName('requeue');
    const tb = await newBus({ pollIntervalMs: 50 });
    const dq = deliveryQueue();
    await consume(tb, [q], (d) => dq.onMessage(d));
    const first = dq.next('delivery');
    await tb.bus.publish([{ queue: q, body: { k: 1 } }]);
    (await first).nack(true, 'not now');
    const again = await dq.next('delivery after requeue');
    expect(again).toMatchObject({ body: { k: 1 }, deliveries: 2 });
    again.ack();
    await until('acked', async () => (await tb.bus.depth([q]))[q] === 0);
  });

  it('a message delivered more than maxDeliveries times is dead-lettered, not handed out again', async () => {
    const q = queueName('poison');
    const tb = await newBus({ visibilityMs: 150, pollIntervalMs: 50, maxDeliveries: 2 });
    const dq = deliveryQueue();
    await consume(tb, [q], (d) => dq.onMessage(d));
    await tb.bus.publish([{ queue: q, body: { poison: 1 } }]);
    // Never acked.
    const dead = await until('dead letter row', async () => {
      const { rows } = await tdb.db.query('SELECT body, deliveries, reason FROM weft.dead_letters WHERE queue = $1', [q]);
      return rows[0];
    });
    expect(dead).toEqual({ body: { poison: 1 }, deliveries: 3, reason: 'delivered 3 times without being acknowledged' });
    expect(dq.got.map((d) => d.deliveries)).toEqual([1, 2]);
    expect((await tb.bus.depth([q]))[q]).toBe(0);
  });

  it('killing the LISTEN connection loses no message: polling takes over, then LISTEN comes back', async () => {
    const q = queueName('relisten');
    const { log, lines } = capturingLogger();
    const tb = await newBus({ pollIntervalMs: 500 }, log);
    const publisher = await newBus({});
    const dq = deliveryQueue();
    const idle = nextEmptyReceive(tb);
    await consume(tb, [q], (d) => dq.onMessage(d));
    await idle;
    expect(await tb.bus.health()).toEqual({ ok: true, backend: 'pg', detail: 'listening' });
    const [before] = await listenBackends();
    expect(before).toBeDefined();

    const { rows } = await tdb.db.query('SELECT pg_terminate_backend($1) AS ok', [before]);
    expect(rows[0].ok).toBe(true);
    // Published while nobody listens: no notification reaches the consumer.
    const lost = dq.next('the message published while LISTEN was down');
    await publisher.bus.publish([{ queue: q, body: { during: 'outage' } }]);
    const d1 = await lost;
    expect(d1.body).toEqual({ during: 'outage' });
    d1.ack();
    await until('the LOST warning', () => lines.some((l) => l.msg === 'lost the LISTEN connection; polling until it is back'));

    // LISTEN is back on a new backend.
    const after = await until('a new weft-listen backend', async () => (await listenBackends()).find((pid) => pid !== before));
    expect(after).not.toBe(before);
    await until('health says listening', async () => (await tb.bus.health()).detail === 'listening');

    const next = dq.next('a message after LISTEN is back');
    await publisher.bus.publish([{ queue: q, body: { during: 'after' } }]);
    const d2 = await next;
    expect(d2.body).toEqual({ during: 'after' });
    d2.ack();
    expect(dq.got.map((d) => d.body)).toEqual([{ during: 'outage' }, { during: 'after' }]);
  });

  it('depth() counts waiting messages per queue, zero for an empty queue', async () => {
    const [qa, qb, qc] = [queueName('da'), queueName('db'), queueName('dc')];
    const tb = await newBus({});
    await tb.bus.publish([
      { queue: qa, body: 1 },
      { queue: qa, body: 2 },
      { queue: qa, body: 3 },
      { queue: qb, body: 4 },
    ]);
    expect(await tb.bus.depth([qa, qb, qc])).toEqual({ [qa]: 3, [qb]: 1, [qc]: 0 });
    expect(await tb.bus.depth([])).toEqual({});
    await tb.bus.publish([]);
    expect(await tb.bus.depth([qa])).toEqual({ [qa]: 3 });
  });
});
