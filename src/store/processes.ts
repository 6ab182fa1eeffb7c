import type { Database } from './database.js';

/**
 * The process registry (weft.processes), as the dashboard reads it. Workers
 * write their row and heartbeat about once a second; `info` carries what
 * the worker reports about itself:
 * `{ namespaces, concurrency, in_flight, port?, counts: { claimed, succeeded, failed, retried, lost }, bridge? }`
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
  /** ms since the last heartbeat, by the database's clock (so host clock skew does not matter). */
  heartbeat_age_ms: number;
  stale: boolean;
  info: Record<string, unknown>;
}

export const DEFAULT_STALE_AFTER_MS = 5_000;

export async function listProcesses(db: Database, opts: { staleAfterMs?: number } = {}): Promise<ProcessRow[]> {
  const staleMs = opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  const { rows } = await db.query<ProcessRow>(
    `SELECT id, kind, runtime, host, pid, started_at, heartbeat_at, info,
            (extract(epoch FROM clock_timestamp() - heartbeat_at) * 1000)::int AS heartbeat_age_ms,
            heartbeat_at < clock_timestamp() - make_interval(secs => $1 / 1000.0) AS stale
       FROM weft.processes ORDER BY kind, runtime NULLS FIRST, started_at`,
    [staleMs],
  );
  return rows;
}
