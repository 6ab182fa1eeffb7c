import type { Logger } from './logger.js';
import { describeError } from './errors.js';

/**
 * The wait before retry number `attempt` (1-based): exponential from
 * `baseMs`, capped at `maxMs`, with full jitter so that many processes that
 * lost the same dependency do not come back in step.
 *
 * @example
 *   backoffMs(1) // somewhere in [125, 250)
 *   backoffMs(9) // somewhere in [5000, 10000)
 */
export function backoffMs(attempt: number, baseMs = 250, maxMs = 10_000): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/**
 * Codes of a dependency that is unreachable or went away (sockets, PostgreSQL's
 * class 08 and admin shutdowns 57P0x): worth waiting for or retrying, not a
 * mistake to report. The one such table in weft.
 */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', '57P01', '57P02', '57P03']);
const UNREACHABLE_MESSAGE =
  /Connection terminated|connection is closed|Client has encountered a connection error|timeout exceeded when trying to connect|Query read timeout|Socket closed|CONNECTION_FORCED|Connection closed|the database system is (starting up|shutting down)/i;

/** Whether `err` (or an error it wraps) says a dependency is unreachable rather than misconfigured. */
export function isUnreachable(err: unknown): boolean {
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && (UNREACHABLE_CODES.has(e.code) || e.code.startsWith('08'))) return true;
    if (typeof e.message === 'string' && UNREACHABLE_MESSAGE.test(e.message)) return true;
    if (Array.isArray((e as { errors?: unknown }).errors) && (e as { errors: unknown[] }).errors.some(isUnreachable)) return true;
  }
  return false;
}

/**
 * Run `attempt` until it succeeds, waiting with backoff while it fails
 * because `what` is unreachable (logged at warn, with the reason; `onWaiting`
 * is told too, e.g. for /health). Any other error is thrown at once, as is an
 * abort of `signal`.
 */
export async function untilReachable<T>(
  what: string,
  attempt: () => Promise<T>,
  o: { log: Logger; signal?: AbortSignal; onWaiting?: (reason: string) => void },
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isUnreachable(err) || o.signal?.aborted) throw err;
      const reason = describeError(err).message;
      const delay = backoffMs(n, 500, 10_000);
      o.onWaiting?.(reason);
      o.log.warn({ waiting_for: what, attempt: n, retry_in_ms: Math.round(delay), reason }, `${what} is unreachable; waiting for it`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        o.signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
      if (o.signal?.aborted) throw err;
    }
  }
}
