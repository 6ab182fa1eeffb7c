/**
 * CPU time of the processes a benchmark exercises, read from /proc (Linux):
 * the cluster's orchestrators and workers by pid, and the PostgreSQL server's
 * processes as server-meter.ts finds them. Figures are process CPU (user +
 * system), not wall time, so a busy machine inflates latency but not these.
 */
import { readFileSync } from 'node:fs';

const TICKS_PER_S = 100; // USER_HZ on Linux

/** user + system CPU of one process, in ms; undefined when it is gone or /proc is not there. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces), "state" being field 3.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_S;
  } catch {
    return undefined;
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The postmaster of a backend: its parent process (undefined when /proc cannot tell). */
export function postmasterOf(backendPid: number): number | undefined {
  return parentOf(backendPid);
}

/**
 * CPU of process groups (e.g. orchestrators, workers, postgres), each a
 * function returning its current pids, so processes started between two
 * samples (a PostgreSQL backend for a new connection) are counted from when
 * they appear. A process that ended between samples loses its last share.
 */
export class CpuMeter {
  private last = new Map<number, number>();

  constructor(private readonly groups: Record<string, () => number[]>) {}

  /** Start counting from now. */
  start(): void {
    this.last = new Map();
    for (const pids of Object.values(this.groups)) for (const pid of pids()) this.last.set(pid, processCpuMs(pid) ?? 0);
  }

  /** CPU ms each group used since start(). */
  read(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [group, pids] of Object.entries(this.groups)) {
      let sum = 0;
      for (const pid of pids()) {
        const now = processCpuMs(pid);
        if (now === undefined) continue;
        sum += now - (this.last.get(pid) ?? 0);
      }
      out[group] = Math.max(0, sum);
    }
    return out;
  }
}
