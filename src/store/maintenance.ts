import type pg from 'pg';
import { NO_READ_TIMEOUT, type Database } from './database.js';
import type { Logger } from '../shared/logger.js';

/**
 * Keeping weft's tables fast as history grows (issue 8), whatever the
 * server's autovacuum does: the first statistics at start, vacuum and
 * analyse of the tables weft churns when autovacuum is off, and the
 * retention of finished tasks.
 */

/** Tables whose rows weft updates or deletes at every step. */
const CHURNING = ['weft.steps', 'weft.tasks', 'weft.outbox', 'weft.processes', 'weft.queue_waiters', 'weft.task_watchers'];
/** Append-mostly tables: they need statistics and the visibility map, not much more. */
const GROWING = ['weft.step_transitions', 'weft.task_transitions', 'weft.step_edges'];
/** Tiny tables rewritten many times a second: vacuumed often, cheaply, even with autovacuum on (it wakes once a minute). */
const HOT = ['weft.outbox', 'weft.queue_waiters', 'weft.task_watchers', 'weft.processes'];

/** Whether the server runs autovacuum (weft's tables do not turn it off). */
export async function autovacuumOn(db: Database): Promise<boolean> {
  const { rows } = await db.query<{ autovacuum: string }>('SHOW autovacuum');
  return rows[0]?.autovacuum === 'on';
}

/**
 * ANALYZE weft's tables that have never been analysed: on a fresh database
 * the planner would otherwise plan for empty tables until autovacuum's first
 * round (a minute), or forever with autovacuum off.
 */
export async function analyzeNeverAnalyzed(db: Database): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT format('%I.%I', schemaname, relname) AS name FROM pg_stat_user_tables
      WHERE schemaname = 'weft' AND last_analyze IS NULL AND last_autoanalyze IS NULL`,
  );
  for (const r of rows) await db.queryLong(`ANALYZE ${r.name}`);
  return rows.map((r) => r.name);
}

/** One maintenance pass at a time across processes (VACUUM would only skip what another holds). */
const MAINTENANCE_LOCK = [2003199092, 1] as const;

/**
 * VACUUM (and ANALYZE) weft's tables: `hot` the tiny ones that churn every
 * second, otherwise every table weft writes. Returns false when another
 * process is doing it right now.
 */
export async function vacuumTables(db: Database, which: 'hot' | 'all'): Promise<boolean> {
  const client = await db.acquire();
  try {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [...MAINTENANCE_LOCK]);
    if (!rows[0]?.ok) return false;
    try {
      const tables = which === 'hot' ? HOT : [...CHURNING, ...GROWING];
      await client.query({ text: `VACUUM (ANALYZE, SKIP_LOCKED) ${tables.join(', ')}`, query_timeout: NO_READ_TIMEOUT } as pg.QueryConfig);
      return true;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [...MAINTENANCE_LOCK]);
    }
  } finally {
    client.release();
  }
}

/** The smallest UUIDv7 of a moment: every task created before it has a smaller id. */
export function firstUuidv7At(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`;
}

/**
 * Delete up to `limit` tasks that ended more than `keepMs` ago, with their
 * steps, edges and transitions (weft.delete_expired_tasks). Returns how many.
 */
export async function deleteExpiredTasks(db: Database, keepMs: number, limit = 200): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT weft.delete_expired_tasks($1, make_interval(secs => $2 / 1000.0), $3) AS n`, [
    firstUuidv7At(Date.now() - keepMs),
    keepMs,
    limit,
  ]);
  return rows[0]?.n ?? 0;
}

/** Log, once at start, what weft will do about the server's maintenance. */
export async function describeMaintenance(db: Database, log: Logger, intervalMs: number): Promise<boolean> {
  const on = await autovacuumOn(db);
  if (!on) {
    // Not a warning: nothing is wrong, weft takes care of it.
    log.info(
      { vacuum_every_ms: intervalMs },
      'PostgreSQL runs with autovacuum off; weft vacuums and analyses its own tables itself (set WEFT_VACUUM_INTERVAL_MS to change how often)',
    );
  }
  return on;
}
