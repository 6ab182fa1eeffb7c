import type { Logger } from '../shared/logger.js';
import { stopTracing } from '../telemetry/index.js';

/**
 * Run `shutdown` once on SIGTERM or SIGINT, then exit. A second signal
 * exits at once (an operator who presses Ctrl-C twice means it).
 */
export function onShutdownSignal(log: Logger, shutdown: (signal: string) => Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal; exiting now');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    shutdown(signal).then(
      // Spans still buffered go out before the process does (a no-op with tracing off).
      () => stopTracing().then(() => process.exit(0)),
      (err) => {
        log.error({ err: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}

/**
 * The start-up half of a process that waits for its dependencies: SIGTERM or
 * SIGINT aborts `signal` (ending any wait on it) before `shutdown` runs, and
 * `quitting` turns the error of a wait that was ended so into `undefined`, so
 * the caller just returns while `shutdown` ends the process. `stop` is the
 * same shutdown for the process's own reasons (a broken runtime).
 *
 * @example
 *   const { signal, quitting } = stopOnSignal(log, async () => { await store?.close(); });
 *   store = await untilReachable('PostgreSQL', connect, { log, signal }).catch(quitting);
 *   if (!store) return;
 */
export function stopOnSignal(
  log: Logger,
  shutdown: () => Promise<void>,
): { signal: AbortSignal; quitting: (err: unknown) => undefined; stop: () => Promise<void> } {
  const aborted = new AbortController();
  const stop = () => {
    aborted.abort();
    return shutdown();
  };
  onShutdownSignal(log, stop);
  const quitting = (err: unknown): undefined => {
    if (!aborted.signal.aborted) throw err; // a signal while waiting: shutdown() is ending the process
    return undefined;
  };
  return { signal: aborted.signal, quitting, stop };
}
