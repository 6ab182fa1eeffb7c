import type pg from 'pg';
import type { Database } from './database.js';
import type { ScheduleEvent, ScheduleEventKind, ScheduleRecord, ScheduleSpec } from '../core/schedule.js';
import { ConflictError, NotFoundError } from '../shared/errors.js';

/** A schedule as stored (migrations/008_schedules.sql). */
export type ScheduleRow = ScheduleRecord;
export type { ScheduleEvent, ScheduleEventKind };

const COLUMNS = `name, namespace, template, version, cron, timezone, context, overlap, catch_up, paused, next_fire_at,
  last_fire_at, last_task_id, source, created_at, updated_at`;

function rowOf(r: ScheduleRow & { version: string | null }): ScheduleRow {
  return { ...r, version: r.version ?? undefined };
}

/** The transaction a sweep holds its due schedules in (withDueSchedules). */
export type ScheduleTx = pg.PoolClient;

/** A pooled client inside a transaction, or the pool. */
interface Queryable {
  query<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** Write one audit row. */
export async function recordScheduleEvent(
  q: Queryable,
  e: { schedule: string; kind: ScheduleEventKind; fireAt?: Date; taskId?: string; actor: string; detail?: Record<string, unknown> },
): Promise<void> {
  await q.query('INSERT INTO weft.schedule_events (schedule, kind, fire_at, task_id, actor, detail) VALUES ($1, $2, $3, $4, $5, $6)', [
    e.schedule,
    e.kind,
    e.fireAt ?? null,
    e.taskId ?? null,
    e.actor,
    e.detail ? JSON.stringify(e.detail) : null,
  ]);
}

/**
 * Create a schedule, or with `replace` change one of the same name (its
 * next firing is computed afresh; paused stays as it was). ConflictError
 * when the name is taken and `replace` is not set.
 */
export async function saveSchedule(
  db: Database,
  spec: ScheduleSpec,
  opts: { nextFireAt: Date | null; paused: boolean; source: 'api' | 'template'; actor: string; replace: boolean },
): Promise<{ row: ScheduleRow; outcome: 'created' | 'updated' | 'unchanged' }> {
  return db.transaction(async (c) => {
    const { rows: old } = await c.query<ScheduleRow & { version: string | null }>(`SELECT ${COLUMNS} FROM weft.schedules WHERE name = $1 FOR UPDATE`, [
      spec.name,
    ]);
    const prior = old[0];
    if (prior && !opts.replace) {
      throw new ConflictError(
        `a schedule named ${JSON.stringify(spec.name)} already exists; delete it first (weft schedules delete ${spec.name}) or choose another name`,
        { schedule: spec.name },
      );
    }
    const values = [
      spec.name,
      spec.namespace,
      spec.template,
      spec.version ?? null,
      spec.cron,
      spec.timezone,
      JSON.stringify(spec.context ?? {}),
      spec.overlap,
      spec.catch_up,
    ];
    if (prior) {
      const { rows } = await c.query<{ same: boolean }>(
        `SELECT namespace = $2 AND template = $3 AND version IS NOT DISTINCT FROM $4 AND cron = $5 AND timezone = $6
                AND context = $7::jsonb AND overlap = $8 AND catch_up = $9 AS same
           FROM weft.schedules WHERE name = $1`,
        values,
      );
      if (rows[0]?.same) return { row: rowOf(prior), outcome: 'unchanged' as const };
      const { rows: updated } = await c.query<ScheduleRow & { version: string | null }>(
        `UPDATE weft.schedules SET namespace = $2, template = $3, version = $4, cron = $5, timezone = $6, context = $7::jsonb,
                overlap = $8, catch_up = $9, next_fire_at = CASE WHEN paused THEN NULL ELSE $10::timestamptz END, source = $11, updated_at = clock_timestamp()
          WHERE name = $1 RETURNING ${COLUMNS}`,
        [...values, opts.nextFireAt, opts.source],
      );
      await recordScheduleEvent(c, { schedule: spec.name, kind: 'updated', actor: opts.actor, detail: { cron: spec.cron, timezone: spec.timezone } });
      return { row: rowOf(updated[0]!), outcome: 'updated' as const };
    }
    const { rows } = await c.query<ScheduleRow & { version: string | null }>(
      `INSERT INTO weft.schedules (name, namespace, template, version, cron, timezone, context, overlap, catch_up, paused, next_fire_at, source)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12) RETURNING ${COLUMNS}`,
      [...values, opts.paused, opts.paused ? null : opts.nextFireAt, opts.source],
    );
    await recordScheduleEvent(c, { schedule: spec.name, kind: 'created', actor: opts.actor, detail: { cron: spec.cron, timezone: spec.timezone } });
    return { row: rowOf(rows[0]!), outcome: 'created' as const };
  });
}

export async function listSchedules(db: Database): Promise<ScheduleRow[]> {
  const { rows } = await db.queryIdempotent<ScheduleRow & { version: string | null }>(`SELECT ${COLUMNS} FROM weft.schedules ORDER BY name`);
  return rows.map(rowOf);
}

/** The schedule, or NotFoundError naming how to list them. */
export async function getSchedule(db: Database, name: string): Promise<ScheduleRow> {
  const { rows } = await db.queryIdempotent<ScheduleRow & { version: string | null }>(`SELECT ${COLUMNS} FROM weft.schedules WHERE name = $1`, [name]);
  if (!rows[0]) throw new NotFoundError(`no schedule ${JSON.stringify(name)}; GET /v1/schedules (or weft schedules list) lists them`);
  return rowOf(rows[0]);
}

/** Its latest audit rows, newest first. */
export async function scheduleEvents(db: Database, name: string, limit: number): Promise<ScheduleEvent[]> {
  const { rows } = await db.queryIdempotent<ScheduleEvent>(
    'SELECT id, schedule, kind, fire_at, task_id, actor, detail, at FROM weft.schedule_events WHERE schedule = $1 ORDER BY id DESC LIMIT $2',
    [name, limit],
  );
  return rows;
}

/**
 * Pause (next_fire_at NULL) or resume (next_fire_at given: the first firing
 * after now, so the firings of the pause are not caught up). Pausing a
 * paused schedule, or resuming a running one, changes nothing and writes no row.
 */
export async function setSchedulePaused(db: Database, name: string, paused: boolean, nextFireAt: Date | null, actor: string): Promise<ScheduleRow> {
  return db.transaction(async (c) => {
    const { rows } = await c.query<ScheduleRow & { version: string | null }>(
      `UPDATE weft.schedules SET paused = $2, next_fire_at = $3, updated_at = clock_timestamp()
        WHERE name = $1 AND paused <> $2 RETURNING ${COLUMNS}`,
      [name, paused, paused ? null : nextFireAt],
    );
    if (!rows[0]) return getSchedule(db, name);
    await recordScheduleEvent(c, { schedule: name, kind: paused ? 'paused' : 'resumed', actor, detail: paused ? undefined : { next_fire_at: nextFireAt } });
    return rowOf(rows[0]);
  });
}

/** Delete it (its audit rows stay); NotFoundError when there is none. */
export async function deleteSchedule(db: Database, name: string, actor: string): Promise<void> {
  await db.transaction(async (c) => {
    const { rowCount } = await c.query('DELETE FROM weft.schedules WHERE name = $1', [name]);
    if (!rowCount) throw new NotFoundError(`no schedule ${JSON.stringify(name)}; GET /v1/schedules (or weft schedules list) lists them`);
    await recordScheduleEvent(c, { schedule: name, kind: 'deleted', actor });
  });
}

/**
 * Hold the due schedules (next_fire_at ≤ now, not paused) for one sweep:
 * their rows stay locked (FOR UPDATE SKIP LOCKED) until `work` returns, so
 * another orchestrator's sweep passes them by. At most `limit` per sweep.
 */
export async function withDueSchedules(db: Database, limit: number, work: (c: pg.PoolClient, due: ScheduleRow[]) => Promise<void>): Promise<number> {
  // Most sweeps find nothing due: one indexed read then, not BEGIN, SELECT … FOR UPDATE and COMMIT.
  const { rows: any } = await db.queryIdempotent(
    'SELECT 1 FROM weft.schedules WHERE NOT paused AND next_fire_at <= clock_timestamp() LIMIT 1',
    [],
    'weft_schedules_due',
  );
  if (!any.length) return 0;
  return db.transaction(async (c) => {
    const { rows } = await c.query<ScheduleRow & { version: string | null }>(
      `SELECT ${COLUMNS} FROM weft.schedules WHERE NOT paused AND next_fire_at <= clock_timestamp()
        ORDER BY next_fire_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    if (rows.length) await work(c, rows.map(rowOf));
    return rows.length;
  });
}

/** After a sweep fired (or skipped) a schedule's due firings: where it goes next. */
export async function advanceSchedule(c: pg.PoolClient, name: string, next: Date | null, last: { fireAt: Date; taskId: string | null } | undefined) {
  await c.query(
    `UPDATE weft.schedules SET next_fire_at = $2, paused = paused OR $2::timestamptz IS NULL,
            last_fire_at = coalesce($3, last_fire_at), last_task_id = coalesce($4, last_task_id)
      WHERE name = $1`,
    [name, next, last?.fireAt ?? null, last?.taskId ?? null],
  );
}

/** The state of the task a schedule fired last (undefined when it is gone). */
export async function taskStateOf(c: Queryable, taskId: string): Promise<string | undefined> {
  const { rows } = await c.query<{ state: string }>('SELECT state FROM weft.tasks WHERE id = $1', [taskId]);
  return rows[0]?.state;
}
