import { hostname } from 'node:os';
import type { Database } from './database.js';
import { ASYNC_COMMIT_CTE, WITH_ASYNC_COMMIT } from './sql.js';
import type { ProcessExit } from '../core/process-exit.js';

/**
 * weft.processes: every running orchestrator and worker, with a heartbeat.
 * A worker's heartbeat is its lease on every step it runs: a running step
 * whose worker has not heartbeaten for WEFT_LEASE_MS is run again
 * (weft.requeue_lost_steps). `info` is what the dashboard shows; a worker's is
 * `{ namespaces, concurrency, in_flight, port?, counts: { claimed, succeeded, failed, retried, lost }, bridge?, step_latency_ms, flushes }`
 * (bridge = the addon's RuntimeStats for the worker's runtime). A graceful
 * stop deletes the row; a row whose heartbeat is older than `staleAfterMs`
 * belongs to a process that stopped heartbeating (killed, hung, cut off).
 */
export interface ProcessRow {
  id: string;
  kind: 'orchestrator' | 'worker' | 'cli';
  runtime: string | null;
  host: string;
  pid: number;
  started_at: Date;
  heartbeat_at: Date;
  info: Record<string, unknown>;
  /** ms since the last heartbeat, by the database's clock (so host clock skew does not matter). */
  heartbeat_age_ms: number;
  stale: boolean;
}

export const DEFAULT_STALE_AFTER_MS = 5_000;

/** Register (or re-register) this process. */
export async function registerProcess(
  db: Database,
  p: { id: string; kind: ProcessRow['kind']; runtime?: string | null; info?: Record<string, unknown> },
): Promise<void> {
  await db.query(
    `INSERT INTO weft.processes (id, kind, runtime, host, pid, info) VALUES ($1, $2, $3, $4, $5, $6::jsonb)
     ON CONFLICT (id) DO UPDATE SET heartbeat_at = clock_timestamp(), info = excluded.info`,
    [p.id, p.kind, p.runtime ?? null, hostname(), process.pid, JSON.stringify(p.info ?? {})],
  );
}

const HEARTBEAT_SQL = `
  WITH ${ASYNC_COMMIT_CTE}
  UPDATE weft.processes SET heartbeat_at = clock_timestamp(), info = coalesce($2::jsonb, info)
   WHERE id = $1 AND ${WITH_ASYNC_COMMIT}`;

/**
 * Renew this process's heartbeat (and its `info`). Asynchronous commit: a
 * heartbeat lost in a crash is simply renewed by the next one. Returns false
 * when the row is gone (deleted by an operator or a cleanup): re-register.
 */
export async function heartbeatProcess(db: Database, id: string, info?: Record<string, unknown>): Promise<boolean> {
  const { rowCount } = await db.query(HEARTBEAT_SQL, [id, info === undefined ? null : JSON.stringify(info)], 'weft_heartbeat');
  return rowCount === 1;
}

export async function deregisterProcess(db: Database, id: string): Promise<void> {
  await db.query('DELETE FROM weft.processes WHERE id = $1', [id]);
}

/** Live and recently stopped processes, optionally of one kind. */
export async function listProcesses(db: Database, opts: { staleAfterMs?: number; kind?: ProcessRow['kind'] } = {}): Promise<ProcessRow[]> {
  const { rows } = await db.query<ProcessRow>(
    `SELECT id, kind, runtime, host, pid, started_at, heartbeat_at, info,
            (extract(epoch FROM clock_timestamp() - heartbeat_at) * 1000)::int AS heartbeat_age_ms,
            heartbeat_at < clock_timestamp() - make_interval(secs => $1 / 1000.0) AS stale
       FROM weft.processes WHERE $2::text IS NULL OR kind = $2
      ORDER BY kind, runtime NULLS FIRST, started_at`,
    [opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS, opts.kind ?? null],
  );
  return rows;
}

/** Forget processes that stopped heartbeating long ago (crashed without deregistering). */
export async function forgetStaleProcesses(db: Database, olderThanMs: number): Promise<number> {
  const { rowCount } = await db.query(`DELETE FROM weft.processes WHERE heartbeat_at < clock_timestamp() - make_interval(secs => $1 / 1000.0)`, [olderThanMs]);
  return rowCount ?? 0;
}

/**
 * Record how the process `pid` on `host` ended, as `seenBy` (its supervisor)
 * saw it: on its latest row, which it left behind unless it stopped cleanly.
 * The lease sweep names this as the cause when it runs that worker's steps
 * again. Returns the process id, or undefined when it has no row.
 */
export async function recordProcessExit(db: Database, p: { host?: string; pid: number; exit: ProcessExit; seenBy: string }): Promise<string | undefined> {
  const { rows } = await db.query<{ id: string | null }>('SELECT weft.record_process_exit($1, $2, $3::jsonb) AS id', [
    p.host ?? hostname(),
    p.pid,
    JSON.stringify({ ...p.exit, seen_by: p.seenBy }),
  ]);
  return rows[0]?.id ?? undefined;
}
