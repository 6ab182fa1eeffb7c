import type { Database } from './database.js';
import { readEvents, type Dispatch, type OutboxMessage, type StatementOutcome, type StepEventRow } from './events.js';
import { writesOutbox, type DeliveryOrMode } from './delivery.js';
import { ASYNC_COMMIT_CTE, WITH_ASYNC_COMMIT } from './sql.js';

/**
 * What happens after a step-boundary statement commits, and the sweeps that
 * repair what a crash between the two left behind.
 */

/** One notification to send. */
export interface Notice {
  channel: string;
  payload: string;
}

/** Orchestrators LISTEN here: workflow steps began waiting, and their children must be started. */
export const WORKFLOW_CHANNEL = 'weft_workflow';

/** What a bus sends after COMMIT besides its wake-ups: the caller's notices, and one for workflow steps that began waiting. */
export function withDispatchNotices(dispatch: Dispatch, notices: Notice[]): Notice[] {
  return dispatch.workflows.length ? [...notices, { channel: WORKFLOW_CHANNEL, payload: '' }] : notices;
}

/** A step of a watched task changed state (the dashboard's live view; see TaskEvents.watch). */
export function stepNotice(task_id: string, step_id: string, name: string, state: string, attempt: number): Notice {
  return { channel: 'weft_step', payload: JSON.stringify({ task_id, step_id, name, state, attempt }) };
}

/**
 * The `weft_step` notices of a committed statement's step changes in tasks
 * someone watches live (the statement marked them `watched`): steps finished
 * (`finished`, by default the outcome's), claimed (running), enqueued, and
 * entering `waiting`. Nothing for a task nobody watches.
 */
export function watchedStepNotices(o: StatementOutcome, finished: StatementOutcome['finished'] = o.finished): Notice[] {
  const notices: Notice[] = [];
  for (const f of finished) if (f.watched) notices.push(stepNotice(f.task_id, f.step_id, f.name, f.state, f.attempt));
  for (const c of o.claimed) if (c.watched) notices.push(stepNotice(c.task_id, c.id, c.name, 'running', c.attempt));
  for (const s of o.dispatch.steps) if (s.watched) notices.push(stepNotice(s.task_id, s.step_id, s.name ?? '', 'enqueued', 0));
  for (const w of o.waiting) if (w.watched) notices.push(stepNotice(w.task_id, w.step_id, w.name, 'waiting', w.attempt));
  return notices;
}

/**
 * After COMMIT: wake one waiting consumer per ready step of each queue and
 * send `notices`, in one round trip with an asynchronous commit
 * (weft.wake). Returns the consumers registered on `localChannel`, for the
 * caller to wake in-process instead of through PostgreSQL.
 */
export async function wake(db: Database, enqueued: Map<string, number>, localChannel: string | null, notices: Notice[]): Promise<string[]> {
  const queues = enqueued.size ? [...enqueued.keys()] : null;
  const { rows } = await db.query<{ consumer: string }>(
    'SELECT consumer FROM weft.wake($1, $2, $3, $4, $5)',
    [
      queues,
      queues ? [...enqueued.values()] : null,
      localChannel,
      notices.length ? notices.map((n) => n.channel) : null,
      notices.length ? notices.map((n) => n.payload) : null,
    ],
    'weft_wake',
  );
  return rows.map((r) => r.consumer);
}

const DELETE_OUTBOX_SQL = `WITH ${ASYNC_COMMIT_CTE} DELETE FROM weft.outbox WHERE id = ANY($1::bigint[]) AND ${WITH_ASYNC_COMMIT}`;

/**
 * Delete published outbox rows (asynchronous commit: losing the delete in a
 * crash only means the sweep publishes the message again, and the claim
 * drops the duplicate).
 */
export async function deleteOutbox(db: Database, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query(DELETE_OUTBOX_SQL, [ids], 'weft_outbox_delete');
}

/** Outbox rows older than `olderThanMs`: their publisher died between COMMIT and publish (or its publish failed). */
export async function staleOutbox(db: Database, olderThanMs: number, limit = 500): Promise<OutboxMessage[]> {
  const { rows } = await db.query<{ id: string; queue: string; body: OutboxMessage['body'] }>(
    `SELECT id, queue, body FROM weft.outbox WHERE created_at < clock_timestamp() - make_interval(secs => $1 / 1000.0)
      ORDER BY id LIMIT $2`,
    [olderThanMs, limit],
  );
  return rows.map((r) => ({ id: String(r.id), queue: r.queue, body: r.body }));
}

/** waiting_retry → enqueued for every step whose backoff has elapsed (weft.dispatch_due_retries). */
export async function dispatchDueRetries(db: Database, pid: string, delivery: DeliveryOrMode, limit = 500): Promise<StatementOutcome> {
  const { rows } = await db.query<StepEventRow>(
    'SELECT * FROM weft.dispatch_due_retries($1, $2, $3)',
    [pid, writesOutbox(delivery), limit],
    'weft_dispatch_due_retries',
  );
  return readEvents(rows);
}

/**
 * Sleeps whose time came and waits that timed out, finished as if by a worker
 * (weft.wake_waiting: complete, or failed with their task).
 */
export async function wakeWaiting(db: Database, pid: string, delivery: DeliveryOrMode, limit = 500): Promise<StatementOutcome> {
  const { rows } = await db.query<StepEventRow>('SELECT * FROM weft.wake_waiting($1, $2, $3)', [pid, writesOutbox(delivery), limit], 'weft_wake_waiting');
  return readEvents(rows);
}

/** Delayed tasks whose run_at came: started, their root steps released (weft.start_due_tasks). */
export async function startDueTasks(db: Database, pid: string, delivery: DeliveryOrMode, limit = 500): Promise<StatementOutcome> {
  const { rows } = await db.query<StepEventRow>('SELECT * FROM weft.start_due_tasks($1, $2, $3)', [pid, writesOutbox(delivery), limit], 'weft_start_due_tasks');
  return readEvents(rows);
}

/**
 * When the next timed thing is due, if any: a retry, a waiting step's
 * deadline or a delayed start (so a timer can wake exactly then). Each is the
 * first entry of a partial index.
 */
export async function nextDueAt(db: Database): Promise<Date | undefined> {
  const { rows } = await db.query<{ at: Date | null }>(
    `SELECT least((SELECT min(run_after) FROM weft.steps WHERE state = 'waiting_retry'),
                  (SELECT min(run_after) FROM weft.steps WHERE state = 'waiting'),
                  (SELECT min(run_at) FROM weft.tasks WHERE state = 'pending' AND run_at IS NOT NULL)) AS at`,
    [],
    'weft_next_due_at',
  );
  return rows[0]?.at ?? undefined;
}

/**
 * Running steps whose worker stopped heartbeating for `leaseMs`: run again
 * without using the retry budget, or failed (with their task) once they have
 * lost their worker `maxLosses` times (weft.requeue_lost_steps).
 */
export async function requeueLostSteps(
  db: Database,
  pid: string,
  leaseMs: number,
  maxLosses: number,
  delivery: DeliveryOrMode,
  limit = 500,
): Promise<StatementOutcome> {
  const { rows } = await db.query<StepEventRow>(
    'SELECT * FROM weft.requeue_lost_steps($1, $2, $3, $4, $5)',
    [pid, Math.trunc(leaseMs), maxLosses, writesOutbox(delivery), limit],
    'weft_requeue_lost_steps',
  );
  return readEvents(rows);
}

/**
 * Broker only: steps `enqueued` for longer than `olderThanMs` without a
 * claim (the broker lost their message): dispatched again through the outbox.
 */
export async function redispatchStale(db: Database, pid: string, olderThanMs: number, limit = 500): Promise<StatementOutcome> {
  const { rows } = await db.query<StepEventRow>(
    'SELECT * FROM weft.redispatch_stale($1, $2, $3)',
    [pid, Math.trunc(olderThanMs), limit],
    'weft_redispatch_stale',
  );
  return readEvents(rows);
}

/** Forget waiter registrations whose consumer stopped renewing them (it died). */
export async function expireWaiters(db: Database): Promise<void> {
  await db.query('DELETE FROM weft.queue_waiters WHERE expires_at < clock_timestamp()');
  await db.query('DELETE FROM weft.task_watchers WHERE expires_at < clock_timestamp()');
}
