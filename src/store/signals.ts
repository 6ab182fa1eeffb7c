import { randomBytes } from 'node:crypto';
import { backoffMs } from '../shared/retry.js';
import pg from 'pg';
import type { Logger } from '../shared/logger.js';
import type { Database } from './database.js';
import { wake, type Notice } from './dispatch.js';

/**
 * A process's notifications through PostgreSQL: the one LISTEN connection
 * (reconnecting with backoff), and the one place that sends, after a commit,
 * the wake-ups of waiting consumers and the notices other processes listen
 * for (task ends, live step changes). Everything sent in the same tick goes
 * in one round trip (weft.wake). Listeners in this process get a notice at
 * once, without the round trip; its echo from PostgreSQL is ignored.
 *
 * One instance per Database (per process in production; tests give each
 * simulated process its own pool): `signalsOf(db, log)`.
 */
export class Signals {
  /** This process's wake-up channel: waiting consumers registered with it are woken here. */
  readonly wakeChannel: string;
  private readonly id = randomBytes(6).toString('hex');
  private client: pg.Client | undefined;
  private listening = false;
  private closed = false;
  private readonly handlers = new Map<string, Set<(payload: string) => void>>();
  private readonly reconnectHandlers = new Set<() => void>();
  private readonly consumers = new Map<string, () => void>();
  /** This process's consumers of step queues, woken in-process when a statement of this process enqueued on their queues. */
  private readonly localConsumers = new Map<string, { local: LocalConsumer; wakeUp: () => void; promised: number; claimNo: number }>();
  private pendingQueues = new Map<string, number>();
  private pendingNotices: Notice[] = [];
  private scheduled = false;
  private inFlight: Promise<void> | undefined;
  private connecting: Promise<void> | undefined;
  private failures = 0;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
  ) {
    this.wakeChannel = `weft_wake_${this.id}`;
  }

  /** True while the LISTEN connection is up (otherwise consumers fall back to polling). */
  get isListening(): boolean {
    return this.listening;
  }

  /**
   * Call `handler` with every payload sent on `channel`, by this process
   * (at once) or another (through NOTIFY). Returns an unsubscribe function.
   */
  async listen(channel: string, handler: (payload: string) => void): Promise<() => void> {
    let set = this.handlers.get(channel);
    const fresh = !set;
    if (!set) this.handlers.set(channel, (set = new Set()));
    set.add(handler);
    await this.ensureConnected();
    if (fresh && this.client && this.listening) await this.client.query(`LISTEN ${channel}`).catch(() => undefined);
    return () => {
      set!.delete(handler);
    };
  }

  /** Called after the LISTEN connection came back: notifications may have been missed meanwhile. */
  onReconnect(fn: () => void): () => void {
    this.reconnectHandlers.add(fn);
    return () => this.reconnectHandlers.delete(fn);
  }

  /**
   * A consumer of this process, woken when weft.wake picks it. With `local`
   * (its queues, free room and claims), a statement of this process that
   * enqueued on one of its queues wakes it at once, in-process, for as many
   * steps as it has room; only the rest go through weft.wake.
   */
  async registerConsumer(consumer: string, wakeUp: () => void, local?: LocalConsumer): Promise<() => void> {
    this.consumers.set(consumer, wakeUp);
    if (local) this.localConsumers.set(consumer, { local, wakeUp, promised: 0, claimNo: local.claims });
    await this.listen(this.wakeChannel, () => undefined);
    return () => {
      this.consumers.delete(consumer);
      this.localConsumers.delete(consumer);
    };
  }

  /**
   * After a COMMIT that enqueued steps (`enqueued`: ready steps per queue)
   * and/or has notices to tell: batched per tick, never throws. A lost
   * wake-up only delays a step to its consumers' next poll; a lost notice,
   * a waiter's next re-check.
   */
  send(enqueued: Map<string, number> | undefined, notices: Notice[]): void {
    if (this.closed) return;
    for (const n of notices) this.deliverLocally(n.channel, n.payload);
    if (enqueued && this.localConsumers.size) enqueued = this.wakeLocally(enqueued);
    if (enqueued) for (const [q, k] of enqueued) this.pendingQueues.set(q, (this.pendingQueues.get(q) ?? 0) + k);
    for (const n of notices) this.pendingNotices.push({ channel: n.channel, payload: `${this.id}:${n.payload}` });
    if (this.scheduled || (this.pendingQueues.size === 0 && this.pendingNotices.length === 0)) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * Wake this process's consumers of the queues that got steps, up to their
   * free room, without a round trip (loopback: microseconds instead of a
   * weft.wake statement). Room promised to earlier wake-ups counts until the
   * consumer's next claim starts (that claim sees their steps, committed
   * before); a consumer whose claim is in flight is left to weft.wake, which
   * waits for that claim's queue lock and so sees its registration as the
   * claim left it (as before this shortcut). A consumer whose room is gone by
   * the time it claims leaves the steps to the next claim of its finishes or
   * its poll, as one picked by weft.wake would. Returns the steps still to
   * wake others for.
   */
  private wakeLocally(enqueued: Map<string, number>): Map<string, number> {
    const rest = new Map<string, number>();
    for (const [queue, count] of enqueued) {
      let k = count;
      for (const c of this.localConsumers.values()) {
        if (k <= 0) break;
        if (c.local.claiming() || !c.local.queues.includes(queue)) continue;
        if (c.claimNo !== c.local.claims) {
          c.claimNo = c.local.claims;
          c.promised = 0;
        }
        const take = Math.min(Math.max(0, c.local.room() - c.promised), k);
        if (take === 0) continue;
        c.promised += take;
        k -= take;
        c.wakeUp();
      }
      if (k > 0) rest.set(queue, k);
    }
    return rest;
  }

  /** Send what is pending: one weft.wake round trip. */
  private flush(): void {
    if (!this.scheduled) return;
    this.scheduled = false;
    const queues = this.pendingQueues;
    const notes = this.pendingNotices;
    this.pendingQueues = new Map();
    this.pendingNotices = [];
    const run = wake(this.db, queues, this.wakeChannel, notes).then(
      (local) => {
        for (const c of local) this.consumers.get(c)?.();
      },
      (err: Error) => this.log.warn({ err: err.message, queues: [...queues.keys()] }, 'waking consumers failed; they will find the steps on their next poll'),
    );
    this.inFlight = run.finally(() => {
      if (this.inFlight === run) this.inFlight = undefined;
    });
  }

  private deliverLocally(channel: string, payload: string): void {
    const set = this.handlers.get(channel);
    if (!set) return;
    for (const h of set) {
      try {
        h(payload);
      } catch (err) {
        this.log.warn({ err: (err as Error).message, channel }, 'a notification handler threw');
      }
    }
  }

  private onNotification(n: pg.Notification): void {
    if (n.channel === this.wakeChannel) {
      this.consumers.get(n.payload ?? '')?.();
      return;
    }
    const payload = n.payload ?? '';
    const colon = payload.indexOf(':');
    if (colon > 0 && payload.slice(0, colon) === this.id) return; // our own, delivered locally already
    this.deliverLocally(n.channel, colon > 0 ? payload.slice(colon + 1) : payload);
  }

  private ensureConnected(): Promise<void> {
    if (this.client || this.closed) return this.connecting ?? Promise.resolve();
    const client = new pg.Client({ connectionString: this.db.url, application_name: 'weft-listen', keepAlive: true, connectionTimeoutMillis: 5_000 });
    this.client = client;
    client.on('notification', (n) => this.onNotification(n));
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    this.connecting = (async () => {
      try {
        await client.connect();
        for (const channel of this.handlers.keys()) await client.query(`LISTEN ${channel}`);
        if (this.client !== client) return;
        this.listening = true;
        if (this.failures > 0) {
          this.log.info('the LISTEN connection is back');
          this.failures = 0;
          for (const fn of this.reconnectHandlers) fn();
          for (const w of this.consumers.values()) w();
        }
      } catch (err) {
        this.lost(client, err as Error);
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client || this.closed) return;
    this.client = undefined;
    this.listening = false;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.failures++;
    const delay = Math.round(backoffMs(this.failures, 500, 5_000));
    if (this.failures === 1) this.log.warn({ err: err.message }, 'lost the LISTEN connection; polling until it is back');
    setTimeout(() => void this.ensureConnected(), delay).unref();
  }

  async close(): Promise<void> {
    this.flush(); // what was sent just before closing still goes (e.g. `weft cancel` telling the workers)
    this.closed = true;
    await this.inFlight;
    const c = this.client;
    this.client = undefined;
    this.listening = false;
    if (c) {
      c.removeAllListeners('end');
      await c.end().catch(() => undefined);
    }
  }
}

/** A consumer of step queues in this process, as its loop sees it (see Signals.registerConsumer). */
export interface LocalConsumer {
  /** The queues it claims from. */
  readonly queues: readonly string[];
  /** Steps it could start now. */
  room(): number;
  /** A claim statement of it is in flight. */
  claiming(): boolean;
  /** Claims it has started so far (a new one covers the steps it was woken for before it). */
  readonly claims: number;
}

const instances = new WeakMap<Database, Signals>();

/** The Signals of this pool (one per process). */
export function signalsOf(db: Database, log: Logger): Signals {
  let s = instances.get(db);
  if (!s) {
    const created = new Signals(db, log);
    instances.set(db, created);
    db.onClose(() => created.close());
    s = created;
  }
  return s;
}
