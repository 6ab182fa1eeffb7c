import type pg from 'pg';
import { isDataError, isDisconnect, type Database } from './database.js';
import type { PlannedStep } from '../core/plan.js';
import type { StepState } from '../core/states.js';
import { emptyDispatch, mergeOutcomes, readEvents, type FinishedStep, type StatementOutcome, type StepEventRow } from './events.js';
import { waiterParams, type WaiterRegistration, type WaiterTurn } from './claim.js';
import { stepRows } from './tasks.js';
import { inlined, Uuid } from './sql.js';
import { storableErrorRecord, weftErrorRecord, type ErrorRecordShape } from '../core/error-record.js';

/**
 * The step boundary (issue 8): the worker that finished steps records their
 * outcomes and moves their tasks on, in one statement and one commit
 * (weft.finish_steps, sql/functions/finish_steps.sql). See that function for what it does;
 * this module builds its arguments and splits a batch that PostgreSQL refuses
 * because of one item's data.
 */

/** One finished run, as the worker reports it. The worker has applied the retry policy already. */
export type FinishItem =
  | {
      id: string;
      /** The attempt number the claim handed out: the fence. */
      attempt: number;
      ok: true;
      /** The handler's result as JSON text (stored as is). */
      resultJson: string;
      durationMs: number;
    }
  | {
      id: string;
      attempt: number;
      ok: false;
      /** { class, message, backtrace, permanent, kind, language, ... } */
      error: Record<string, unknown>;
      /** Retry after this many ms; null: the step (and its task) fails, for `reason`. */
      retryMs: number | null;
      reason?: string;
      durationMs: number;
    };

export interface FinishOptions {
  /** Queues this worker serves: ready children there are claimed for it (continuation). */
  queues: string[];
  /** Steps it can start now (its free slots, the finished ones included). */
  room: number;
  /** Also fill the room from `queues` (the PostgreSQL queue). */
  claimQueued: boolean;
  /** Write outbox rows for the steps it enqueues (a broker). */
  outbox: boolean;
  /** The consumer's waiter registration (PostgreSQL queue). */
  waiter?: WaiterRegistration;
}

const FINISH_SQL = 'SELECT * FROM weft.finish_steps($1, $2::uuid[], $3::jsonb, $4::jsonb, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13, $14)';

/**
 * The items as two JSON arrays (successes, failures; null when empty);
 * results are spliced in as the text they already are, never re-serialised.
 */
export function itemsJson(items: FinishItem[]): { successes: string | null; failures: string | null } {
  const ok: string[] = [];
  const failed: string[] = [];
  for (const i of items) {
    if (i.ok) {
      ok.push(`{"id":${JSON.stringify(i.id)},"attempt":${i.attempt},"duration_ms":${finite(i.durationMs)},"result":${i.resultJson}}`);
    } else {
      failed.push(
        JSON.stringify({
          id: i.id,
          attempt: i.attempt,
          duration_ms: finite(i.durationMs),
          // The worker made it storable already; this is the last guard before the database.
          error: storableErrorRecord(i.error as ErrorRecordShape),
          retry_ms: i.retryMs === null ? null : Math.max(0, Math.round(i.retryMs)),
          reason: i.reason ?? null,
        }),
      );
    }
  }
  return { successes: ok.length ? `[${ok.join(',')}]` : null, failures: failed.length ? `[${failed.join(',')}]` : null };
}

function finite(n: number): number {
  return Number.isFinite(n) ? Math.round(n * 1000) / 1000 : 0;
}

function finishParams(worker: string, items: FinishItem[], expansion: string | null, o: FinishOptions, turn: WaiterTurn | undefined): unknown[] {
  const { successes, failures } = itemsJson(items);
  return [
    worker,
    items.map((i) => i.id),
    successes,
    failures,
    expansion,
    o.queues,
    Math.max(0, o.room),
    o.claimQueued,
    o.outbox,
    ...waiterParams(o.waiter, turn),
  ];
}

/**
 * Finish a batch of runs in one statement. Items that are not accepted (not
 * the attempt that holds the step any more) are simply absent from
 * `finished`. If PostgreSQL refuses the batch because of one item's data (a
 * result jsonb cannot hold), the items are finished one by one and the
 * offending one fails permanently with PostgreSQL's reason, so one bad value
 * never blocks the others or hangs its step. That holds for a failure too
 * (issue 15): the error record is made storable first, and a failure the
 * database still refuses is recorded as an UnstorableFailureError instead.
 */
export function finishSteps(db: Database, worker: string, items: FinishItem[], o: FinishOptions): Promise<StatementOutcome> {
  return finishOrSplit(db, worker, items, o, false);
}

async function finishOrSplit(db: Database, worker: string, items: FinishItem[], o: FinishOptions, replacement: boolean): Promise<StatementOutcome> {
  try {
    return await finishOnce(db, worker, items, o);
  } catch (err) {
    if (!isDataError(err)) throw err;
    if (items.length > 1) {
      const parts: StatementOutcome[] = [];
      let room = o.room;
      for (const item of items) {
        const part = await finishOrSplit(db, worker, [item], { ...o, room }, false);
        room = Math.max(0, room - part.claimed.length);
        parts.push(part);
      }
      return mergeOutcomes(parts);
    }
    if (replacement) throw err; // even the replacement was refused: something else is wrong
    return finishOrSplit(db, worker, [refusedItem(items[0]!, err as Error)], o, true);
  }
}

/** One finish statement, with the waiter's turn taken around it. */
async function finishOnce(db: Database, worker: string, items: FinishItem[], o: FinishOptions): Promise<StatementOutcome> {
  const turn = o.waiter?.turn();
  try {
    const { rows } = await db.query<StepEventRow>(FINISH_SQL, finishParams(worker, items, null, o, turn), 'weft_finish_steps');
    return readEvents(rows);
  } finally {
    turn?.done();
  }
}

/**
 * What to record instead of an item PostgreSQL refused because of its data:
 * a permanent failure naming the database's reason, so the step ends and
 * nothing blocks behind it.
 */
function refusedItem(item: FinishItem, err: Error): FinishItem {
  const base = { id: item.id, attempt: item.attempt, ok: false as const, durationMs: item.durationMs, retryMs: null };
  if (item.ok) {
    return {
      ...base,
      reason: 'result refused by the database',
      error: weftErrorRecord(
        'InvalidResultError',
        `the handler's result could not be stored: ${err.message}. Return JSON that PostgreSQL's jsonb can hold (no \\u0000, no lone surrogates, under 255 MB)`,
        { permanent: true, kind: 'invalid_return' },
      ),
    };
  }
  const reported = storableErrorRecord(item.error as ErrorRecordShape);
  return {
    ...base,
    reason: 'failure refused by the database',
    error: weftErrorRecord(
      'UnstorableFailureError',
      `the step failed (${reported.class}: ${reported.message.slice(0, 1_024)}), but the failure could not be recorded as reported: ${err.message}. ` +
        'It is failed for good instead of retried; fix what the database refused, then retry the task',
      { permanent: true, kind: 'unstorable_failure' },
    ),
  };
}

/** A step of the task, as an expansion (decision or batch outcome) needs to know it. */
export interface ExistingStep {
  id: string;
  name: string;
  template_step: string;
  state: StepState;
}

const LOCK_FOR_EXPANSION_SQL = `
  SELECT s.id, s.name, s.template_step, s.state,
         (s.id = $step AND s.state IN ('running', 'enqueued')
          AND weft.holds_attempt(s.worker_id, s.attempts, s.finished_at, $worker, $attempt)) AS holds,
         t.state AS task_state
    FROM weft.tasks t JOIN weft.steps s ON s.task_id = t.id
   WHERE t.id = (SELECT task_id FROM weft.steps WHERE id = $step)
     FOR NO KEY UPDATE OF t`;

/**
 * Finish a decision or batchable step whose outcome creates steps. In one
 * transaction: lock the task and read its steps (one round trip), let
 * `plan` compute the new steps from them (pure: src/core/plan.ts), then
 * insert them and finish the step in the same statement as any other finish.
 * `plan` returns undefined when there is nothing to create (the task is not
 * running), or throws for an outcome that cannot be applied: then the run is
 * finished as `onRejected` says (a permanent failure naming the problem).
 */
export async function finishWithExpansion(
  db: Database,
  worker: string,
  item: Extract<FinishItem, { ok: true }>,
  plan: (existing: ExistingStep[]) => PlannedStep[] | undefined,
  onRejected: (err: unknown) => FinishItem,
  o: FinishOptions,
): Promise<StatementOutcome> {
  const client = await db.acquire();
  let open = false;
  let broken: Error | undefined;
  let refused: Error;
  let turn: WaiterTurn | undefined;
  try {
    const lock = inlined(client, LOCK_FOR_EXPANSION_SQL, { step: new Uuid(item.id), attempt: item.attempt, worker });
    open = true;
    const [, read] = (await client.query(`BEGIN; ${lock}`)) as unknown as [unknown, pg.QueryResult<ExistingStep & { holds: boolean; task_state: string }>];
    const rows = read.rows;
    if (!rows.some((r) => r.holds)) {
      await client.query('ROLLBACK');
      open = false;
      return { claimed: [], dispatch: emptyDispatch(), finished: [], taskEnds: [], waiting: [] };
    }
    let expansion: string | null = null;
    let finish: FinishItem = item;
    if (rows[0]!.task_state === 'running') {
      try {
        const planned = plan(rows.map(({ id, name, template_step, state }) => ({ id, name, template_step, state })));
        if (planned && planned.length) {
          const ids = new Map(rows.map((r) => [r.name, r.id]));
          const states = new Map(rows.map((r) => [r.name, r.state]));
          // A parent created in this same expansion is not complete either.
          expansion = JSON.stringify(stepRows(planned, ids, (parent) => states.get(parent) !== 'complete'));
        }
      } catch (err) {
        finish = onRejected(err);
      }
    }
    turn = o.waiter?.turn();
    const { rows: events } = await client.query<StepEventRow>({
      name: 'weft_finish_steps',
      text: FINISH_SQL,
      values: finishParams(worker, [finish], expansion, o, turn),
    });
    await client.query('COMMIT');
    open = false;
    return readEvents(events);
  } catch (err) {
    if (isDisconnect(err)) broken = err as Error;
    else if (open) await client.query('ROLLBACK').catch(() => undefined);
    if (!isDataError(err)) throw err;
    refused = err as Error;
  } finally {
    turn?.done(); // after the COMMIT (or the ROLLBACK)
    client.release(broken); // a connection that died or timed out is not reused
  }
  // The steps or the result could not be stored (rolled back): the step fails for good, saying why.
  return finishOrSplit(db, worker, [refusedItem(item, refused)], o, true);
}

const RECORDED_SQL = `
  SELECT DISTINCT ON (t.step_id) t.step_id, t.task_id, s.name, t.to_state AS state, i.attempt
    FROM unnest($2::uuid[], $3::int[]) AS i(id, attempt)
    JOIN weft.step_transitions t ON t.step_id = i.id
    JOIN weft.steps s ON s.id = i.id
   WHERE t.process_id = $1 AND t.from_state IN ('running', 'enqueued')
     AND t.to_state IN ('complete', 'waiting_retry', 'error', 'cancelled', 'enqueued')
     AND t.metadata->>'attempt' = i.attempt::text
   ORDER BY t.step_id, t.seq`;

/**
 * Of these runs, the ones whose outcome `worker` itself has recorded already
 * (a transition out of that attempt, written by this worker): a finish whose
 * COMMIT succeeded but whose answer was lost with its connection, written
 * again and refused by the fence (issue 15). Read only when a finish was
 * refused, never on the hot path.
 */
export async function recordedOutcomes(db: Database, worker: string, runs: Array<{ id: string; attempt: number }>): Promise<FinishedStep[]> {
  if (runs.length === 0) return [];
  const { rows } = await db.query<{ step_id: string; task_id: string; name: string; state: StepState; attempt: number }>(RECORDED_SQL, [
    worker,
    runs.map((r) => r.id),
    runs.map((r) => r.attempt),
  ]);
  return rows.map((r) => ({ ...r, watched: false }));
}
