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
