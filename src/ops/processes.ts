/**
 * Is a process alive, and is it still the one we recorded? The embedded
 * PostgreSQL's client registry, its lock and the cluster supervisor all ask.
 * A pid alone can be reused after its process exits, so where it matters a
 * process is recorded with its start time (Linux /proc) too.
 */
import { readFileSync } from 'node:fs';

export interface ProcessIdentity {
  pid: number;
  /** Start time in clock ticks since boot (Linux /proc), so a reused pid is not mistaken for a live client. */
  start: string | null;
}

export function processIdentity(pid: number): ProcessIdentity {
  return { pid, start: processStart(pid) };
}

export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces and parentheses); starttime is field 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** A zombie (exited, not yet reaped by its parent) counts as dead: it holds no port and no files. */
export function isAlive(pid: number | null | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (macOS): trust kill(0)
  }
}

export function sameProcess(pid: number, recorded: ProcessIdentity | null): boolean {
  if (!isAlive(pid)) return false;
  if (!recorded || recorded.start === null) return true;
  const now = processStart(pid);
  return now === null || now === recorded.start;
}
