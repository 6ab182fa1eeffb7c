/**
 * Retry policy: how long to wait before the next attempt, and whether there
 * is a next attempt at all. Pure: the random source is a parameter, so tests
 * (and the randomised DAG simulation) can pin it.
 */
import type { RetryPolicy } from './template/types.js';

/**
 * Delay in ms before retrying after `attempt` (1-based: the attempt that just
 * failed) failed.
 *
 * The raw delay grows by the policy's kind — exponential `base_ms * 2^(attempt-1)`,
 * linear `base_ms * attempt`, fixed `base_ms` — and is capped at `max_ms`.
 * Then "equal jitter" is applied: `delay/2 + random() * delay/2`.
 * Why equal jitter rather than none or "full jitter" (`random() * delay`):
 * without jitter, steps that failed together (a database blip) retry together
 * and fail together again; full jitter spreads them best but may retry almost
 * at once, hammering a dependency that is still recovering. Equal jitter keeps
 * at least half the intended delay and still spreads the herd
 * (see "Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
 * The result is a whole number of ms in `[0, max_ms]`.
 *
 * @example
 *   backoffDelayMs({ max_attempts: 5, backoff: 'exponential', base_ms: 100, max_ms: 10_000 }, 3, () => 1) // 400
 *   backoffDelayMs({ max_attempts: 5, backoff: 'exponential', base_ms: 100, max_ms: 10_000 }, 3, () => 0) // 200
 */
export function backoffDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(
      `backoffDelayMs: attempt must be the 1-based number of the attempt that failed, got ${String(attempt)}; pass 1 after the first failure`,
    );
  }
  const base = Math.max(0, policy.base_ms);
  const max = Math.max(0, policy.max_ms);
  let raw: number;
  switch (policy.backoff) {
    case 'exponential':
      raw = base * 2 ** (attempt - 1); // may be Infinity for huge attempts; the cap below handles it
      break;
    case 'linear':
      raw = base * attempt;
      break;
    case 'fixed':
      raw = base;
      break;
    default: {
      const kind: never = policy.backoff;
      throw new RangeError(`backoffDelayMs: unknown backoff kind "${String(kind)}"; expected exponential, linear or fixed`);
    }
  }
  const capped = Math.min(raw, max);
  // Clamp the random source so a misbehaving one cannot push us outside [capped/2, capped].
  const r = Math.min(1, Math.max(0, random()));
  const jittered = capped / 2 + (r * capped) / 2;
  return Math.min(max, Math.max(0, Math.round(jittered)));
}

/** What orchestration does with a step whose attempt just failed. */
export type FailureDecision = { action: 'retry'; delayMs: number } | { action: 'fail'; reason: 'permanent' | 'attempts_exhausted' };

/**
 * Decide between retrying and failing after a failed attempt.
 * `attempts` counts executions so far, including the one that just failed.
 * A permanent failure (the handler said so, or its outcome was malformed) is
 * never retried, even with attempts left.
 *
 * @example
 *   const p = { max_attempts: 3, backoff: 'fixed', base_ms: 1000, max_ms: 1000 } as const;
 *   decideAfterFailure(p, 1, false, () => 1) // { action: 'retry', delayMs: 1000 }
 *   decideAfterFailure(p, 3, false)          // { action: 'fail', reason: 'attempts_exhausted' }
 *   decideAfterFailure(p, 1, true)           // { action: 'fail', reason: 'permanent' }
 */
export function decideAfterFailure(policy: RetryPolicy, attempts: number, permanent: boolean, random: () => number = Math.random): FailureDecision {
  if (permanent) return { action: 'fail', reason: 'permanent' };
  if (attempts >= policy.max_attempts) return { action: 'fail', reason: 'attempts_exhausted' };
  return { action: 'retry', delayMs: backoffDelayMs(policy, Math.max(1, attempts), random) };
}
