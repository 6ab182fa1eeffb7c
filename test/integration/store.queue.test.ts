/**
 * The PostgreSQL queue (src/messaging/pg.ts, WEFT_MESSAGING=pg): the steps table is the queue. A consumer
 * that found nothing waits to be woken; a statement that enqueues a step wakes exactly one waiting
 * consumer per ready step (no thundering herd), no wake-up is lost, and losing the LISTEN connection
 * loses nothing.
 *
 * Every bus gets its own pool (as a separate process would) and every test its own namespace, so its
 * own queue. The fallback poll is set far beyond the tests' deadlines: only a wake-up can meet them.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import type { StepConsumer, Subscription } from '../../src/messaging/types.js';
import { claimQueued } from '../../src/store/claim.js';
import { createTask } from '../../src/store/tasks.js';
import { registerTemplate } from '../../src/store/templates.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { initialSteps } from '../../src/core/plan.js';
import type { TemplateDefinition } from '../../src/core/template/types.js';
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

/** A one-step native template in a namespace of its own; its queue is `step.<ns>.native`. */
async function freshTemplate(): Promise<{ def: TemplateDefinition; queue: string }> {
  const ns = `q_${randomBytes(4).toString('hex')}`;
  const def = parseTemplate(`namespace: ${ns}\nname: one\nversion: 1.0.0\nsteps:\n  - { name: only, handler: t.only }\n`, 'one.yaml');
  await registerTemplate(tdb.db, def);
  return { def, queue: `step.${ns}.native` };
}

/** Create a task on `db` (a producer process) and hand its dispatch to `bus`, as the orchestrator does. */
async function produce(db: Database, bus: PgMessageBus, def: TemplateDefinition): Promise<string> {
  const { taskId, dispatch } = await createTask(
    db,
    { namespace: def.namespace, name: def.name, version: def.version, context: {}, steps: initialSteps(def) },
    'test-producer',
    'wake',
  );
  bus.deliver(dispatch);
  return taskId;
}

interface TestProcess {
  db: Database;
  bus: PgMessageBus;
}

async function newProcess(log: Logger = silentLogger()): Promise<TestProcess> {
  const db = await openDatabase({ url: tdb.url, log, max: 5 });
  const bus = new PgMessageBus(db, log, { pollIntervalMs: 60_000 });
  closers.push(async () => {
    await bus.close();
    await db.close();
  });
  return { db, bus };
}

/** A consumer with `room` slots that claims steps and never finishes them (each claim takes a slot for good). */
interface TestConsumer {
  claimed: string[];
  /** Claim statements run, and how many of them came back empty. */
  claims: number;
  empty: number;
  sub: Subscription;
  /** Resolves once `n` steps were claimed in all (rejects after `ms`). */
  claimedCount(n: number, label: string, ms?: number): Promise<void>;
  /** Resolves once the consumer has gone idle: its last claim came back short. */
  idle(): Promise<void>;
}

async function consume(p: TestProcess, queue: string, room = 1): Promise<TestConsumer> {
  const listeners = new Set<() => void>();
  const c: TestConsumer = {
    claimed: [],
    claims: 0,
    empty: 0,
    sub: undefined as unknown as Subscription,
    claimedCount: (n, label, ms = 10_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label} (claimed ${c.claimed.length})`)), ms);
        const check = () => {
          if (c.claimed.length < n) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve();
        };
        listeners.add(check);
        check();
      }),
    idle: async () => {
      await until('the consumer to go idle', () => c.claims > 0 && lastShort);
    },
  };
  /** The last claim came back short: the consumer is registered as a waiter and sleeps. */
  let lastShort = false;
  const consumer: StepConsumer = {
    room: () => room - c.claimed.length,
    claimQueued: async (r, waiter) => {
      const out = await claimQueued(p.db, 'test-worker', [queue], r, waiter);
      c.claims++;
      lastShort = out.claimed.length < r;
      if (out.claimed.length === 0) c.empty++;
      c.claimed.push(...out.claimed.map((s) => s.id));
      for (const l of [...listeners]) l();
      return out.claimed.length;
    },
    claimDelivered: async () => {
      throw new Error('not a broker');
    },
  };
  c.sub = await p.bus.consume([queue], consumer, { prefetch: room });
  closers.push(() => c.sub.stop());
  return c;
}

/** Resolves once `what()` is truthy; fails (naming `label`) after `ms`. For conditions with no event to await. */
async function until<T>(label: string, what: () => T | Promise<T>, ms = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function waiters(queue: string): Promise<string[]> {
  const { rows } = await tdb.db.query<{ consumer: string }>('SELECT consumer FROM weft.queue_waiters WHERE queue = $1 ORDER BY consumer', [queue]);
  return rows.map((r) => r.consumer);
}

async function listenBackends(): Promise<number[]> {
  const { rows } = await tdb.db.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE application_name = 'weft-listen' AND datname = current_database() ORDER BY pid`,
  );
  return rows.map((r) => r.pid);
}

describe('the PostgreSQL queue', () => {
  it('a consumer that found its queue empty is registered as a waiter, and a step enqueued by another process wakes it', async () => {
    const { def, queue } = await freshTemplate();
    const worker = await newProcess();
    const producer = await newProcess();
    const c = await consume(worker, queue);
    await c.idle();
    expect(await waiters(queue)).toEqual([c.sub.waiter!.consumer]);
    await produce(producer.db, producer.bus, def);
    await c.claimedCount(1, 'the step to be claimed through a wake-up (the poll is 60 s away)');
    // Its claim was full (room 1): the registration is gone until it finds the queue empty again.
    expect(await waiters(queue)).toEqual([]);
  });

  it('one step wakes one consumer: of two waiting in two processes, only one claims', async () => {
    const { def, queue } = await freshTemplate();
    const producer = await newProcess();
    const a = await consume(await newProcess(), queue, 5);
    const b = await consume(await newProcess(), queue, 5);
    await a.idle();
    await b.idle();
    const claimsBefore = a.claims + b.claims;
    await produce(producer.db, producer.bus, def);
    const before = { a: a.claims, b: b.claims };
    await until('someone to claim the step', () => a.claimed.length + b.claimed.length === 1);
    // Give a wrongly woken second consumer time to show itself.
    await new Promise((r) => setTimeout(r, 300));
    const [winner, loser] = a.claimed.length ? [a, b] : [b, a];
    expect(loser.claims - (loser === a ? before.a : before.b)).toBe(0);
    expect(winner.claims - (winner === a ? before.a : before.b)).toBe(1);
    expect(a.claimed.length + b.claimed.length).toBe(1);
    expect(claimsBefore).toBe(before.a + before.b);
  });

  it('k steps wake k consumers, each claiming one', async () => {
    const { def, queue } = await freshTemplate();
    const producer = await newProcess();
    const consumers = await Promise.all([1, 2, 3].map(async () => consume(await newProcess(), queue)));
    for (const c of consumers) await c.idle();
    await Promise.all([produce(producer.db, producer.bus, def), produce(producer.db, producer.bus, def), produce(producer.db, producer.bus, def)]);
    await until('all three steps to be claimed', () => consumers.reduce((n, c) => n + c.claimed.length, 0) === 3);
    expect(consumers.map((c) => c.claimed.length).sort()).toEqual([1, 1, 1]);
  });

  it("a step enqueued by the consumer's own process wakes it in-process, ahead of a more recently registered waiter elsewhere", async () => {
    const { def, queue } = await freshTemplate();
    const own = await newProcess();
    const mine = await consume(own, queue, 5);
    await mine.idle();
    // Registered after `mine`: weft.wake (most recent first) would pick this one.
    const other = await consume(await newProcess(), queue, 5);
    await other.idle();
    const otherClaims = other.claims;
    await produce(own.db, own.bus, def);
    await mine.claimedCount(1, "the producing process's own consumer to claim the step");
    await new Promise((r) => setTimeout(r, 300)); // a wrongly woken other consumer would claim meanwhile
    expect(other.claims).toBe(otherClaims);
    expect(other.claimed).toEqual([]);
  });

  it("steps beyond the own consumer's room wake waiters in other processes through weft.wake, also when told one by one", async () => {
    const { def, queue } = await freshTemplate();
    const own = await newProcess();
    const mine = await consume(own, queue, 1);
    await mine.idle();
    const other = await consume(await newProcess(), queue, 5);
    await other.idle();
    // Two creates committed, their wake-ups told back to back (before the own consumer's claim can start):
    // the first takes its one slot, so the second must go to the other process.
    const created = await Promise.all(
      [1, 2].map(() =>
        createTask(own.db, { namespace: def.namespace, name: def.name, version: def.version, context: {}, steps: initialSteps(def) }, 'test-producer', 'wake'),
      ),
    );
    for (const c of created) own.bus.deliver(c.dispatch);
    await mine.claimedCount(1, 'the own consumer to claim one step (its room)');
    await other.claimedCount(1, 'the other process to be woken for the second (the poll is 60 s away)');
    expect(new Set([...mine.claimed, ...other.claimed]).size).toBe(2);
  });

  it('no wake-up is lost while consumers go idle and producers enqueue at the same time (200 tasks)', async () => {
    const { def, queue } = await freshTemplate();
    const producers = await Promise.all([1, 2].map(() => newProcess()));
    const consumers = await Promise.all([1, 2].map(async () => consume(await newProcess(), queue, 1_000)));
    const total = 200;
    await Promise.all(
      producers.map(async (p, k) => {
        for (let i = 0; i < total / 2; i++) {
          await produce(p.db, p.bus, def);
          if ((i + k) % 7 === 0) await new Promise((r) => setTimeout(r, 3)); // let consumers go idle now and then
        }
      }),
    );
    await until(
      `all ${total} steps to be claimed (a lost wake-up would wait for the 60 s poll)`,
      () => consumers.reduce((n, c) => n + c.claimed.length, 0) === total,
      15_000,
    );
    expect(new Set(consumers.flatMap((c) => c.claimed)).size).toBe(total);
  });

  it('a claim that fills its room removes only a registration made by a statement that came back before it was sent (seq <= known)', async () => {
    const { queue } = await freshTemplate();
    const register = (waiting: boolean, seq: number, known: number) =>
      tdb.db.query('SELECT weft.register_waiter($1, $2, $3, $4, $5, $6, $7)', [[queue], 'c1', 'weft_wake_c1', 60_000, waiting, seq, known]);
    await register(true, 2, 1); // statement 2 came back short
    await register(false, 3, 1); // statement 3, sent while 2 was in flight, filled its room
    expect(await waiters(queue)).toEqual(['c1']);
    await register(true, 1, 0); // statement 1, older, comes back short later: the registration keeps seq 2
    await register(false, 4, 1);
    expect(await waiters(queue)).toEqual(['c1']);
    await register(false, 5, 4); // sent after 2 came back: its room held 2's free slots
    expect(await waiters(queue)).toEqual([]);
  });

  it('a consumer that stops takes its registration with it: the next step wakes a live consumer, not the stopped one', async () => {
    const { def, queue } = await freshTemplate();
    const producer = await newProcess();
    const live = await consume(await newProcess(), queue);
    await live.idle();
    // Registered after the live one, so a wake-up would pick it first (the most recently registered).
    const leaving = await consume(await newProcess(), queue);
    await leaving.idle();
    expect(await waiters(queue)).toEqual([live.sub.waiter!.consumer, leaving.sub.waiter!.consumer].sort());
    await leaving.sub.stop();
    expect(await waiters(queue)).toEqual([live.sub.waiter!.consumer]);
    await produce(producer.db, producer.bus, def);
    await live.claimedCount(1, 'the live consumer to be woken');
  });

  it('a consumer whose registration expired (it died) is not woken: the step waits for a live one', async () => {
    const { def, queue } = await freshTemplate();
    const producer = await newProcess();
    await tdb.db.query(
      `INSERT INTO weft.queue_waiters (queue, consumer, channel, expires_at) VALUES ($1, 'dead', 'weft_wake_dead', now() - interval '1 second')`,
      [queue],
    );
    const live = await consume(await newProcess(), queue);
    await live.idle();
    await produce(producer.db, producer.bus, def);
    await live.claimedCount(1, 'the live consumer to be woken instead of the dead one');
    expect(await waiters(queue)).toEqual(['dead']);
  });

  it('killing the LISTEN connection loses nothing: polling takes over, then LISTEN comes back', async () => {
    const { def, queue } = await freshTemplate();
    const { log, lines } = capturingLogger();
    const db = await openDatabase({ url: tdb.url, log, max: 5 });
    const bus = new PgMessageBus(db, log, { pollIntervalMs: 60_000 });
    closers.push(async () => {
      await bus.close();
      await db.close();
    });
    const worker = { db, bus };
    const producer = await newProcess();
    const c = await consume(worker, queue, 10);
    await c.idle();
    expect(await bus.health()).toEqual({ ok: true, backend: 'pg', detail: 'listening' });
    const before = await until("the consumer's LISTEN backend", async () => {
      const mine = await tdb.db.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE application_name = 'weft-listen' AND datname = current_database() AND query LIKE $1`,
        [`%${c.sub.waiter!.channel}%`],
      );
      return mine.rows[0]?.pid;
    });
    await tdb.db.query('SELECT pg_terminate_backend($1)', [before]);
    await until('the LOST warning', () => lines.some((l) => l.msg === 'lost the LISTEN connection; polling until it is back'));
    // Enqueued while nobody listens: the consumer polls every 250 ms meanwhile.
    await produce(producer.db, producer.bus, def);
    await c.claimedCount(1, 'the step enqueued while LISTEN was down');
    const after = await until('a new weft-listen backend', async () => (await listenBackends()).find((pid) => pid !== before));
    expect(after).not.toBe(before);
    await until('health says listening', async () => (await bus.health()).detail === 'listening');
    await c.idle();
    await produce(producer.db, producer.bus, def);
    await c.claimedCount(2, 'a step enqueued after LISTEN is back, through a wake-up');
  });

  it('depth() counts ready steps per queue, zero for an empty queue', async () => {
    const a = await freshTemplate();
    const b = await freshTemplate();
    const p = await newProcess();
    for (let i = 0; i < 3; i++) await produce(p.db, p.bus, a.def);
    await produce(p.db, p.bus, b.def);
    expect(await p.bus.depth([a.queue, b.queue, 'step.nothing.native'])).toEqual({ [a.queue]: 3, [b.queue]: 1, 'step.nothing.native': 0 });
    expect(await p.bus.depth([])).toEqual({});
  });
});
