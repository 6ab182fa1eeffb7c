/**
 * What a throughput window cost the machine, measured from the PostgreSQL
 * server itself (issue 20): the WAL it wrote (server-wide
 * `pg_current_wal_lsn()` delta) and the CPU of its processes, found by pid
 * through `pg_stat_activity` (every backend and background process) plus the
 * postmaster, and read from /proc/<pid>/stat, beside the CPU of the bench's
 * own orchestrators and workers.
 *
 * The server's CPU is visible only when it runs on this machine in this pid
 * namespace (the embedded PostgreSQL always does). The probe checks that the
 * /proc entry of its own backend's pid is that backend (same start time as
 * `pg_stat_activity.backend_start`): a server on another host, or in a
 * container whose pids are not ours, fails the check and the CPU is left out
 * with the reason, never read from an unrelated process.
 */
import { readFileSync } from 'node:fs';
import { withConnection, type OneOffConnection } from '../store/one-off.js';
import { CpuMeter, postmasterOf } from './cpu.js';

const TICKS_PER_S = 100; // USER_HZ on Linux

export interface WindowCost {
  /** CPU ms per group over the window (the groups given, and `postgres` when visible). */
  cpu_ms?: Record<string, number>;
  /** Why the server's CPU could not be measured (absent when it was). */
  cpu_unavailable?: string;
  /** Bytes of WAL the whole server wrote during the window. */
  wal_bytes: number;
}

/** Start of a process in Unix seconds from /proc (undefined when /proc cannot tell). */
function processStartS(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    return Number.isFinite(ticks) && Number.isFinite(btime) ? btime + ticks / TICKS_PER_S : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The server's processes as /proc sees them, or why it cannot see them. A
 * backend's /proc start time and the server's own `backend_start` agree to
 * within clock-tick rounding when both name the same process.
 */
async function serverProcesses(c: OneOffConnection): Promise<{ pids: () => Promise<number[]> } | { why: string }> {
  const me = (
    await c.query<{ pid: number; started: number }>(
      'SELECT pid, extract(epoch FROM backend_start)::float8 AS started FROM pg_stat_activity WHERE pid = pg_backend_pid()',
    )
  ).rows[0];
  if (!me) return { why: 'pg_stat_activity does not show this connection' };
  const seen = processStartS(me.pid);
  if (seen === undefined) return { why: `no process ${me.pid} in /proc here: the server runs on another host or in another pid namespace` };
  if (Math.abs(seen - me.started) > 2) {
    return { why: `process ${me.pid} in /proc is not the server's backend ${me.pid} (another pid namespace, e.g. a container)` };
  }
  const postmaster = postmasterOf(me.pid);
  return {
    pids: async () => {
      const { rows } = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity');
      return [...(postmaster !== undefined ? [postmaster] : []), ...rows.map((r) => r.pid)];
    },
  };
}

/**
 * Run `work` as one measured window: the WAL the server wrote and the CPU of
 * `groups` (pid lists of the bench's own processes) and of the server.
 * A process that ends inside the window loses its last share; one that
 * starts inside it counts from its start.
 */
export async function meterWindow<T>(
  databaseUrl: string,
  groups: Record<string, () => number[]>,
  work: () => Promise<T>,
): Promise<{ result: T; cost: WindowCost }> {
  return withConnection(databaseUrl, async (c) => {
    const server = await serverProcesses(c);
    let pids: number[] = [];
    const refresh = async () => {
      if ('pids' in server) pids = await server.pids();
    };
    const meter = new CpuMeter({ ...groups, ...('pids' in server ? { postgres: () => pids } : {}) });
    await refresh();
    const lsn = (await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
    meter.start();
    const result = await work();
    await refresh();
    const cpu = meter.read();
    const wal = (await c.query<{ bytes: number }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8 AS bytes', [lsn])).rows[0]!.bytes;
    return { result, cost: { cpu_ms: cpu, wal_bytes: wal, ...('why' in server ? { cpu_unavailable: server.why } : {}) } };
  });
}
