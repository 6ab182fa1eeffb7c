import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backoffDelayMs, decideAfterFailure } from '../../src/core/retry.js';
import type { RetryPolicy } from '../../src/core/template/types.js';

const low = () => 0;
const high = () => 1;
const exp: RetryPolicy = { max_attempts: 5, backoff: 'exponential', base_ms: 100, max_ms: 1_000 };
const lin: RetryPolicy = { max_attempts: 5, backoff: 'linear', base_ms: 100, max_ms: 250 };
const fixed: RetryPolicy = { max_attempts: 5, backoff: 'fixed', base_ms: 300, max_ms: 10_000 };

describe('backoffDelayMs', () => {
  it.each([
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 800],
    [5, 1_000], // 1600 capped at max_ms
    [60, 1_000], // 2^59 * 100 capped
    [2000, 1_000], // Infinity capped
  ])('exponential: attempt %i → full delay %i, half of it with no jitter', (attempt, full) => {
    expect(backoffDelayMs(exp, attempt, high)).toBe(full);
    expect(backoffDelayMs(exp, attempt, low)).toBe(full / 2);
  });

  it.each([
    [1, 100],
    [2, 200],
    [3, 250], // 300 capped
  ])('linear: attempt %i → full delay %i', (attempt, full) => {
    expect(backoffDelayMs(lin, attempt, high)).toBe(full);
    expect(backoffDelayMs(lin, attempt, low)).toBe(full / 2);
  });

  it('fixed: the same delay every attempt, capped at max_ms', () => {
    expect([1, 2, 7].map((a) => backoffDelayMs(fixed, a, high))).toEqual([300, 300, 300]);
    expect(backoffDelayMs(fixed, 3, low)).toBe(150);
    expect(backoffDelayMs({ ...fixed, max_ms: 120 }, 1, high)).toBe(120);
  });

  it('uses the midpoint of the jitter range for random() = 0.5', () => {
    expect(backoffDelayMs(exp, 3, () => 0.5)).toBe(300);
  });

  it('clamps a random source that strays outside [0, 1]', () => {
    expect(backoffDelayMs(exp, 3, () => 7)).toBe(400);
    expect(backoffDelayMs(exp, 3, () => -3)).toBe(200);
  });

  it('is 0 when base_ms is 0', () => {
    expect(backoffDelayMs({ ...exp, base_ms: 0 }, 4, high)).toBe(0);
  });

  it('refuses an attempt number below 1', () => {
    expect(() => backoffDelayMs(exp, 0)).toThrow(RangeError);
    expect(() => backoffDelayMs(exp, 0)).toThrow('attempt must be the 1-based number of the attempt that failed, got 0');
  });

  it('always lies in [0, max_ms] and within [capped/2, capped] for any policy and random value', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('exponential', 'linear', 'fixed'),
        fc.integer({ min: 0, max: 3_600_000 }),
        fc.integer({ min: 0, max: 86_400_000 }),
        fc.integer({ min: 1, max: 200 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (backoff, base_ms, max_ms, attempt, r) => {
          const policy: RetryPolicy = { max_attempts: 3, backoff, base_ms, max_ms };
          const d = backoffDelayMs(policy, attempt, () => r);
          const full = backoffDelayMs(policy, attempt, high);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThanOrEqual(max_ms);
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(Math.floor(full / 2));
          expect(d).toBeLessThanOrEqual(full);
        },
      ),
    );
  });
});

describe('decideAfterFailure', () => {
  it('fails a permanent failure at once, even with attempts left', () => {
    expect(decideAfterFailure(exp, 1, true, high)).toEqual({ action: 'fail', reason: 'permanent' });
  });

  it('retries below max_attempts with the backoff of the failed attempt', () => {
    expect(decideAfterFailure(exp, 1, false, high)).toEqual({ action: 'retry', delayMs: 100 });
    expect(decideAfterFailure(exp, 4, false, low)).toEqual({ action: 'retry', delayMs: 400 });
  });

  it('fails with attempts_exhausted at max_attempts (and beyond)', () => {
    expect(decideAfterFailure(exp, 5, false, high)).toEqual({ action: 'fail', reason: 'attempts_exhausted' });
    expect(decideAfterFailure(exp, 6, false, high)).toEqual({ action: 'fail', reason: 'attempts_exhausted' });
  });

  it('never retries when max_attempts is 1', () => {
    expect(decideAfterFailure({ ...exp, max_attempts: 1 }, 1, false, high)).toEqual({
      action: 'fail',
      reason: 'attempts_exhausted',
    });
  });
});
