import type { Database } from './database.js';
import { readEvents, type StatementOutcome, type StepEventRow } from './events.js';

/**
 * A PostgreSQL-queue consumer's standing: when a claim comes back short, the
 * consumer is registered as waiting on its queues, and the next statement
 * that enqueues a step there wakes it on `channel` (see weft.wake).
 *
 * Its claims and its worker's finishes (which claim too) each renew or remove
 * the registration, and two can be in flight at once, each given only the
 * free slots the other had not taken. So every such statement takes a
 * {@link turn}: its number in the order of sending, and the newest number
 * below which every statement had come back when it was sent. A statement
 * that fills its room removes only a registration made by one of those
 * (weft.register_waiter), never one made for slots it was not given.
 */
export class WaiterRegistration {
  private sent = 0;
  private readonly inFlight = new Set<number>();

  constructor(
    /** Unique per consumer (process and subscription). */
    readonly consumer: string,
    /** The NOTIFY channel its process listens on. */
    readonly channel: string,
    /** How long the registration holds without being renewed (the consumer's poll renews it). */
    readonly ttlMs: number,
  ) {}

  /** Taken just before sending a statement that renews or removes the registration; `done()` once it has committed or failed. */
  turn(): WaiterTurn {
    const seq = ++this.sent;
    let known = seq - 1;
    for (const s of this.inFlight) known = Math.min(known, s - 1);
    this.inFlight.add(seq);
    return { seq, known, done: () => void this.inFlight.delete(seq) };
  }
}

export interface WaiterTurn {
  readonly seq: number;
  readonly known: number;
  done(): void;
}

/** The parameters weft.claim_queued and weft.finish_steps end with: consumer, channel, ttl, and the turn's two numbers. */
export function waiterParams(waiter: WaiterRegistration | undefined, turn: WaiterTurn | undefined): unknown[] {
  return [waiter?.consumer ?? null, waiter?.channel ?? null, waiter?.ttlMs ?? 0, turn?.seq ?? 0, turn?.known ?? 0];
}

/**
 * Claim up to `limit` ready steps of `queues`, oldest first, for `worker`
 * (enqueued → running, attempt + 1), and read what their handlers need: one
 * statement (weft.claim_queued). With `waiter`, a short claim registers the
 * consumer as waiting and a full one removes the registration.
 */
export async function claimQueued(db: Database, worker: string, queues: string[], limit: number, waiter?: WaiterRegistration): Promise<StatementOutcome> {
  const turn = waiter?.turn();
  try {
    const { rows } = await db.query<StepEventRow>(
      'SELECT * FROM weft.claim_queued($1, $2, $3, $4, $5, $6, $7, $8)',
      [worker, queues, limit, ...waiterParams(waiter, turn)],
      'weft_claim_queued',
    );
    return readEvents(rows);
  } finally {
    turn?.done();
  }
}

/**
 * Claim these steps for `worker` (a broker delivered messages naming them).
 * Steps that are not `enqueued` any more are skipped: the message was a
 * duplicate or stale, and nothing runs twice.
 */
export async function claimIds(db: Database, worker: string, stepIds: string[]): Promise<StatementOutcome> {
  const { rows } = await db.query<StepEventRow>('SELECT * FROM weft.claim_ids($1, $2::uuid[])', [worker, stepIds], 'weft_claim_ids');
  return readEvents(rows);
}
