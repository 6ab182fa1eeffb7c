import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Database } from '../store/database.js';
import { ASYNC_COMMIT_CTE, WITH_ASYNC_COMMIT } from '../store/sql.js';
import type { Logger } from '../shared/logger.js';
import type { BusHealth, ConsumeOptions, Delivery, MessageBus, OutgoingMessage, Subscription } from './types.js';

export interface PgBusOptions {
  /** How long a received message stays hidden before it is delivered again if not acked. */
  visibilityMs?: number;
  /** Fallback poll when no notification arrives ("hybrid" mode). */
  pollIntervalMs?: number;
  /** Deliveries after which a message is moved to weft.dead_letters. */
  maxDeliveries?: number;
}

// Receives and acks commit asynchronously (see ASYNC_COMMIT_CTE): losing
// one in a crash only means a redelivery.
const RECEIVE_SQL = `
  WITH ${ASYNC_COMMIT_CTE}
  UPDATE weft.queue_messages
     SET visible_at = clock_timestamp() + make_interval(secs => $3 / 1000.0), deliveries = deliveries + 1
   WHERE id IN (SELECT m.id
                  FROM unnest($1::text[]) AS q(name),
                       LATERAL (SELECT id FROM weft.queue_messages
                                 WHERE queue = q.name AND visible_at <= clock_timestamp()
                                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) AS m
                 LIMIT $2)
     AND ${WITH_ASYNC_COMMIT}
  RETURNING id, queue, body, deliveries`;

/**
 * The NOTIFY channel of a queue: a short, valid identifier that every
 * process derives the same way (queue names can be long and contain dots).
 */
export function channelOf(queue: string): string {
  return `weft_q_${createHash('sha1').update(queue).digest('hex').slice(0, 24)}`;
}

const ACK_SQL = `WITH ${ASYNC_COMMIT_CTE} DELETE FROM weft.queue_messages WHERE id = ANY($1::bigint[]) AND ${WITH_ASYNC_COMMIT}`;

/**
 * The PostgreSQL queue (WEFT_MESSAGING=pg): rows in weft.queue_messages,
 * claimed with FOR UPDATE SKIP LOCKED and hidden for a visibility timeout,
 * deleted on ack. After a publishing transaction commits, `published()`
 * wakes this process's consumers at once and sends a NOTIFY on each queue's
 * own channel (batched per tick) to the other processes that consume it; a slow poll catches anything
 * a lost notification (or a dropped LISTEN connection) left.
 *
 * The NOTIFY is deliberately its own tiny transaction, not part of the one
 * that commits the messages: PostgreSQL serialises the commits of all
 * notifying transactions, WAL flush included (measured here: 64 tasks in
 * flight were held to ~100 steps/s, every backend waiting on Lock:object).
 */
export class PgMessageBus implements MessageBus {
  readonly backend = 'pg' as const;
  readonly transactionalOutbox = true;
  private listener: pg.Client | undefined;
  private listening = false;
  private closed = false;
  private readonly wakers = new Set<(queue: string) => void>();
  /** NOTIFY channel → queue, for every queue this process consumes. */
  private readonly channels = new Map<string, string>();
  private listenChain: Promise<unknown> = Promise.resolve();
  private readonly visibilityMs: number;
  private readonly pollIntervalMs: number;
  private readonly maxDeliveries: number;
  private pendingAcks: string[] = [];
  private readonly pendingNotify = new Set<string>();
  /** Names this bus in its notifications (see published()). */
  private readonly busId = randomBytes(6).toString('hex');
  private notifyScheduled = false;
  private ackFlush: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
    options: PgBusOptions = {},
  ) {
    this.visibilityMs = options.visibilityMs ?? 30_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.maxDeliveries = options.maxDeliveries ?? 10;
  }

  async publish(messages: OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.db.query(
      `INSERT INTO weft.queue_messages (queue, body) SELECT m.queue, m.body FROM jsonb_to_recordset($1::jsonb) AS m(queue text, body jsonb)`,
      [JSON.stringify(messages)],
    );
    this.published(messages.map((m) => m.queue));
  }

  published(queues: string[]): void {
    for (const q of queues) {
      this.pendingNotify.add(q);
      for (const w of this.wakers) w(q);
    }
    if (this.notifyScheduled || this.closed) return;
    this.notifyScheduled = true;
    setImmediate(() => {
      this.notifyScheduled = false;
      const batch = [...this.pendingNotify];
      this.pendingNotify.clear();
      if (batch.length === 0) return;
      // One channel per queue, so only processes consuming it wake up; the
      // payload names this bus, so its own consumers (woken above already)
      // ignore the echo instead of polling once more.
      this.db
        .query(`SELECT pg_notify(c, $2) FROM unnest($1::text[]) AS c`, [batch.map(channelOf), this.busId], 'weft_queue_notify')
        .catch((err: Error) => this.log.warn({ err: err.message, queues: batch }, 'NOTIFY failed; consumers will find the messages on their next poll'));
    });
  }

  async consume(queues: string[], onMessage: (d: Delivery) => void, options: ConsumeOptions): Promise<Subscription> {
    await this.ensureListening();
    await this.listenTo(queues);
    const wanted = new Set(queues);
    let inFlight = 0;
    let running = true;
    let wake: (() => void) | undefined;
    let woken = false;
    const waker = (queue: string) => {
      // '*' wakes every consumer (after a LISTEN reconnect a notification may have been missed).
      if (queue !== '*' && !wanted.has(queue)) return;
      woken = true;
      wake?.();
    };
    this.wakers.add(waker);

    const settle = () => {
      // Look again at once only if this consumer was full: it may have left
      // messages behind. Otherwise a notification will say when there is more.
      const wasFull = inFlight >= options.prefetch;
      inFlight--;
      if (!wasFull) return;
      woken = true;
      wake?.();
    };

    const loop = async () => {
      let failures = 0;
      while (running && !this.closed) {
        const room = options.prefetch - inFlight;
        if (room > 0) {
          woken = false;
          try {
            const { rows } = await this.db.query<{ id: string; queue: string; body: unknown; deliveries: number }>(
              RECEIVE_SQL,
              [queues, room, this.visibilityMs],
              'weft_queue_receive',
            );
            failures = 0;
            for (const row of rows) {
              if (row.deliveries > this.maxDeliveries) {
                void this.deadLetter(row.id, `delivered ${row.deliveries} times without being acknowledged`);
                continue;
              }
              inFlight++;
              onMessage(this.delivery(row, settle));
            }
            if (rows.length === room) continue; // there may be more
          } catch (err) {
            failures++;
            const delay = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
            this.log.warn({ err: (err as Error).message, queues, retry_in_ms: delay }, 'receiving from the PostgreSQL queue failed; retrying');
            await sleep(delay);
            continue;
          }
        }
        if (!running) break;
        // Woken while querying (a notification, or capacity freed): look
        // again, but only if there is room; a full consumer waits for a settle.
        if (woken && options.prefetch - inFlight > 0) continue;
        woken = false;
        // Sleep until a notification, freed capacity, or the fallback poll.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.listening ? this.pollIntervalMs : Math.min(this.pollIntervalMs, 250));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    };
    const done = loop();
    return {
      stop: async () => {
        running = false;
        this.wakers.delete(waker);
        wake?.();
        await done;
      },
    };
  }

  private delivery(row: { id: string; queue: string; body: unknown; deliveries: number }, settle: () => void): Delivery {
    let settled = false;
    const once = (fn: () => void) => {
      if (settled) return;
      settled = true;
      settle();
      fn();
    };
    return {
      queue: row.queue,
      body: row.body,
      deliveries: row.deliveries,
      ack: () => once(() => this.queueAck(row.id)),
      nack: (requeue, reason) =>
        once(() => {
          if (requeue) {
            void this.db
              .query(`UPDATE weft.queue_messages SET visible_at = clock_timestamp() + interval '100 milliseconds' WHERE id = $1`, [row.id])
              .catch((err) => this.log.warn({ err: err.message }, 'requeue failed; the message reappears after its visibility timeout'));
          } else {
            void this.deadLetter(row.id, reason);
          }
        }),
    };
  }

  /** Acks are batched: one DELETE for all acks of the same tick, off the hot path. */
  private queueAck(id: string): void {
    this.pendingAcks.push(id);
    if (this.ackFlush) return;
    this.ackFlush = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      const ids = this.pendingAcks;
      this.pendingAcks = [];
      this.ackFlush = undefined;
      try {
        await this.db.query(ACK_SQL, [ids], 'weft_queue_ack');
      } catch (err) {
        // The messages reappear after the visibility timeout and are dropped
        // as duplicates by the claim; nothing is lost.
        this.log.warn({ err: (err as Error).message, count: ids.length }, 'acknowledging messages failed; they will be redelivered');
      }
    });
  }

  private async deadLetter(id: string, reason: string): Promise<void> {
    try {
      await this.db.query(
        `WITH m AS (DELETE FROM weft.queue_messages WHERE id = $1 RETURNING id, queue, body, enqueued_at, deliveries)
         INSERT INTO weft.dead_letters (id, queue, body, enqueued_at, deliveries, reason)
         SELECT id, queue, body, enqueued_at, deliveries, $2 FROM m ON CONFLICT (id) DO NOTHING`,
        [id, reason],
      );
      this.log.warn({ message_id: id, reason }, 'message moved to weft.dead_letters');
    } catch (err) {
      this.log.warn({ err: (err as Error).message, message_id: id }, 'dead-lettering a message failed');
    }
  }

  /** One LISTEN connection per process, shared by every consumer; reconnects with backoff. */
  private async ensureListening(): Promise<void> {
    if (this.listener || this.closed) return;
    const client = new pg.Client({ connectionString: this.db.url, application_name: 'weft-listen', keepAlive: true });
    this.listener = client;
    client.on('notification', (n) => {
      const queue = this.channels.get(n.channel);
      if (queue === undefined || n.payload === this.busId) return;
      for (const w of this.wakers) w(queue);
    });
    client.on('error', (err) => this.relisten(client, err));
    client.on('end', () => this.relisten(client, new Error('connection ended')));
    try {
      await client.connect();
      for (const channel of this.channels.keys()) await client.query(`LISTEN ${channel}`);
      this.listening = true;
    } catch (err) {
      this.relisten(client, err as Error);
    }
  }

  /** LISTEN on the channels of these queues (once per queue per process). */
  private async listenTo(queues: string[]): Promise<void> {
    for (const queue of queues) {
      const channel = channelOf(queue);
      if (this.channels.has(channel)) continue;
      this.channels.set(channel, queue);
      // If the connection is down, ensureListening() LISTENs on every known
      // channel when it is back. One statement at a time on this connection.
      const listener = this.listener;
      if (listener && this.listening) {
        this.listenChain = this.listenChain.then(() => listener.query(`LISTEN ${channel}`)).catch(() => undefined);
        await this.listenChain;
      }
    }
  }

  private relisten(client: pg.Client, err: Error): void {
    if (this.listener !== client || this.closed) return;
    this.listener = undefined;
    this.listening = false;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.log.warn({ err: err.message }, 'lost the LISTEN connection; polling until it is back');
    setTimeout(() => {
      void this.ensureListening();
      // Wake every consumer: a notification may have been missed meanwhile.
      for (const w of this.wakers) w('*');
    }, 500).unref();
  }

  /**
   * VACUUM the queue table: every message leaves a dead row or two behind,
   * and between autovacuum rounds (a minute apart) a busy queue would
   * otherwise pile up tens of thousands of them. Orchestrators call this
   * every few seconds; with SKIP_LOCKED a concurrent run is skipped.
   */
  async maintain(): Promise<void> {
    await this.db.query('VACUUM (SKIP_LOCKED) weft.queue_messages');
  }

  async depth(queues: string[]): Promise<Record<string, number>> {
    const { rows } = await this.db.query<{ queue: string; n: string }>(
      'SELECT queue, count(*) AS n FROM weft.queue_messages WHERE queue = ANY($1::text[]) GROUP BY queue',
      [queues],
    );
    const out: Record<string, number> = Object.fromEntries(queues.map((q) => [q, 0]));
    for (const r of rows) out[r.queue] = Number(r.n);
    return out;
  }

  async health(): Promise<BusHealth> {
    try {
      await this.db.query('SELECT 1 FROM weft.queue_messages LIMIT 1');
      return { ok: true, backend: 'pg', detail: this.listening ? 'listening' : 'polling (LISTEN connection down)' };
    } catch (err) {
      return { ok: false, backend: 'pg', detail: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.ackFlush;
    const l = this.listener;
    this.listener = undefined;
    if (l) {
      l.removeAllListeners('end');
      await l.end().catch(() => undefined);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
