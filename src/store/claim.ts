import type { Database } from './database.js';
import { readEvents, type StatementOutcome, type StepEventRow } from './events.js';

/**
 * A PostgreSQL-queue consumer's standing: when a claim comes back short, the
 * consumer is registered as waiting on its queues, and the next statement
 * that enqueues a step there wakes it on `channel` (see weft.wake).
 */
export interface WaiterRegistration {
  /** Unique per consumer (process and subscription). */
  consumer: string;
  /** The NOTIFY channel its process listens on. */
  channel: string;
  /** How long the registration holds without being renewed (the consumer's poll renews it). */
  ttlMs: number;
}

/**
 * Claim up to `limit` ready steps of `queues`, oldest first, for `worker`
 * (enqueued → running, attempt + 1), and read what their handlers need: one
 * statement (weft.claim_queued). With `waiter`, a short claim registers the
 * consumer as waiting and a full one removes the registration.
 */
export async function claimQueued(db: Database, worker: string, queues: string[], limit: number, waiter?: WaiterRegistration): Promise<StatementOutcome> {
  const { rows } = await db.query<StepEventRow>(
    'SELECT * FROM weft.claim_queued($1, $2, $3, $4, $5, $6)',
    [worker, queues, limit, waiter?.consumer ?? null, waiter?.channel ?? null, waiter?.ttlMs ?? 0],
    'weft_claim_queued',
  );
  return readEvents(rows);
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
