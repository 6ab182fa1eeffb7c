/**
 * How a process ended, as whoever started it saw it (issue 15): the cluster
 * supervisor records this on a worker's row in weft.processes, and the lease
 * sweep turns it into the cause of each loss of the steps that worker ran
 * (migrations/005). A loss whose exit nobody recorded "went silent".
 *
 * @example
 *   describeExit(null, 'SIGSEGV') // { cause: 'crashed', signal: 'SIGSEGV' }
 *   describeExit(70, null)        // { cause: 'exited', code: 70 }
 */
export interface ProcessExit {
  /** crashed: a signal of a fault in the process itself; killed: any other signal; exited: it exited with a code. */
  cause: 'crashed' | 'killed' | 'exited';
  signal?: string;
  code?: number;
}

/** Signals a process gets for a fault of its own (a bad memory access, an abort, …), not from someone else. */
const CRASH_SIGNALS: ReadonlySet<string> = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT', 'SIGSYS', 'SIGTRAP']);

export function describeExit(code: number | null, signal: string | null): ProcessExit {
  if (signal) return { cause: CRASH_SIGNALS.has(signal) ? 'crashed' : 'killed', signal };
  return { cause: 'exited', code: code ?? 0 };
}
