import type { Database } from '../store/database.js';
import { backoffMs } from '../shared/retry.js';
import type { Logger } from '../shared/logger.js';
import type { Dispatch, OutboxMessage } from '../store/events.js';
import { withDispatchNotices, type Notice } from '../store/dispatch.js';
import { signalsOf, type Signals } from '../store/signals.js';
import { deliveryFor } from '../store/delivery.js';
import { traceDelivery, tracing } from '../telemetry/index.js';
import type { BusHealth, ConsumeOptions, LocalClaim, MessageBus, StepConsumer, Subscription } from './types.js';
import { WaiterRegistration } from '../store/claim.js';

export interface PgBusOptions {
  /** Fallback poll when no wake-up arrives (a lost notification, a dropped LISTEN connection). */
  pollIntervalMs?: number;
}

let consumers = 0;

/**
 * The PostgreSQL queue (WEFT_MESSAGING=pg): the steps table is the queue. A
 * ready step is a row in state `enqueued` of its queue; a worker claims with
 * weft.claim_queued (FOR UPDATE SKIP LOCKED, oldest first) or, when it
 * finishes a step, in the same statement (weft.finish_steps). Nothing is
 * inserted, acknowledged or deleted per message.
 *
 * Wake-ups: a consumer whose claim comes back short is registered as a
 * waiter; after a statement that enqueued steps commits, `deliver` picks one
 * waiter per ready step and notifies only it (weft.wake), so one consumer
 * answers each wake-up instead of every consumer of the queue. A consumer
 * that is not woken polls every `pollIntervalMs` (and renews its
 * registration); it polls every 250 ms while its LISTEN connection is down.
 */
export class PgMessageBus implements MessageBus {
  readonly backend = 'pg' as const;
  readonly delivery = deliveryFor('wake');
  private readonly pollIntervalMs: number;
  private readonly signals: Signals;
  private closed = false;
  /** Consumers of this bus (this process) that take steps claimed for them by a task's creation (claimLocally). */
  private readonly adopters = new Set<{ queues: readonly string[]; consumer: StepConsumer; busy: () => boolean }>();

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
    options: PgBusOptions = {},
  ) {
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.signals = signalsOf(db, log);
  }

  deliver(dispatch: Dispatch, told: Notice[] = []): void {
    const notices = withDispatchNotices(dispatch, told);
    if (tracing.enabled) traceDelivery('pg', dispatch, notices);
    if (dispatch.enqueued.size === 0 && notices.length === 0) return;
    this.signals.send(dispatch.enqueued, notices);
  }

  /** Nothing to publish: the PostgreSQL queue writes no outbox. */
  async republish(_messages: OutboxMessage[], _options?: { timeoutMs?: number }): Promise<void> {}

  async consume(queues: string[], consumer: StepConsumer, _options: ConsumeOptions): Promise<Subscription> {
    const id = `${this.signals.wakeChannel}_${++consumers}`;
    // Long enough to survive two missed polls; a dead consumer's registration expires.
    const waiter = new WaiterRegistration(id, this.signals.wakeChannel, 3 * this.pollIntervalMs + 1_000);
    let running = true;
    let pending = true; // look at once on start
    let sleeper: (() => void) | undefined;
    const wakeUp = () => {
      pending = true;
      sleeper?.();
    };
    let claiming = false;
    const local = { queues, room: () => (running ? consumer.room() : 0), claiming: () => claiming, claims: 0 };
    const unregister = await this.signals.registerConsumer(id, wakeUp, local);
    // While a claim of its own is in flight, the room it asked for is not counted as taken yet: no reservation then.
    const adopter = consumer.adopt ? { queues, consumer, busy: () => claiming || !running } : undefined;
    if (adopter) this.adopters.add(adopter);

    const loop = async () => {
      let failures = 0;
      while (running && !this.closed) {
        const room = consumer.room();
        if (pending && room > 0) {
          pending = false;
          claiming = true;
          local.claims++;
          try {
            const claimed = await consumer.claimQueued(room, waiter);
            claiming = false;
            failures = 0;
            if (claimed === room) pending = true; // there may be more
          } catch (err) {
            claiming = false;
            failures++;
            const delay = Math.round(backoffMs(failures, 200, 5_000));
            this.log.warn({ err: (err as Error).message, queues, retry_in_ms: delay }, 'claiming from the PostgreSQL queue failed; retrying');
            await sleep(delay);
            pending = true;
          }
          continue;
        }
        // A wake-up while every slot is taken stays pending until a slot frees
        // (poke): the slots may be held for finishes in flight, whose claims
        // need not have seen the step it was for, and it took the registration.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(
            () => {
              pending = true;
              resolve();
            },
            this.signals.isListening ? this.pollIntervalMs : Math.min(this.pollIntervalMs, 250),
          );
          sleeper = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        sleeper = undefined;
      }
    };
    const done = loop();
    return {
      waiter,
      poke: () => {
        if (pending) sleeper?.();
      },
      stop: async () => {
        running = false;
        if (adopter) this.adopters.delete(adopter);
        unregister();
        sleeper?.();
        await done;
        // Its registration goes with it: a wake-up that picked a stopped consumer would leave the step to another's poll.
        await this.db.query('DELETE FROM weft.queue_waiters WHERE consumer = $1', [id]).catch(() => undefined);
      },
    };
  }

  claimLocally(queues: readonly string[], want: number): LocalClaim | undefined {
    if (want <= 0 || this.closed) return undefined;
    for (const a of this.adopters) {
      const { consumer } = a;
      if (a.busy() || !consumer.workerId || !queues.some((q) => a.queues.includes(q))) continue;
      const limit = consumer.reserve!(want);
      if (limit === 0) continue;
      let settled = false;
      return {
        worker: consumer.workerId,
        queues: a.queues,
        limit,
        settle: (claimed) => {
          if (settled) return;
          settled = true;
          consumer.adopt!(claimed, limit);
        },
      };
    }
    return undefined;
  }

  async depth(queues: string[]): Promise<Record<string, number>> {
    const { rows } = await this.db.query<{ queue: string; n: string }>(
      `SELECT queue, count(*) AS n FROM weft.steps WHERE state = 'enqueued' AND queue = ANY($1::text[]) GROUP BY queue`,
      [queues],
    );
    const out: Record<string, number> = Object.fromEntries(queues.map((q) => [q, 0]));
    for (const r of rows) out[r.queue] = Number(r.n);
    return out;
  }

  async health(): Promise<BusHealth> {
    try {
      await this.db.query('SELECT 1 FROM weft.queue_waiters LIMIT 1');
      return { ok: true, backend: 'pg', detail: this.signals.isListening ? 'listening' : 'polling (LISTEN connection down)' };
    } catch (err) {
      return { ok: false, backend: 'pg', detail: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
