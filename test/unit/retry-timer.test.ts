/**
 * The retry timer fires at the earliest time it was told, and reaches a time
 * further away than setTimeout's 24.8-day limit in legs instead of firing at
 * once (which made an orchestrator with a task delayed to 2099 re-read its
 * next due time in a loop).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RetryTimer } from '../../src/shared/retry-timer.js';

const DAY = 86_400_000;

describe('RetryTimer', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires once at the earliest time it was given', () => {
    vi.useFakeTimers();
    const fire = vi.fn();
    const t = new RetryTimer(fire);
    t.wakeAt(Date.now() + 900);
    t.wakeAt(Date.now() + 500);
    t.wakeAt(Date.now() + 700);
    vi.advanceTimersByTime(499);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(10);
    expect(fire).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1_000);
    expect(fire).toHaveBeenCalledTimes(1);
    t.stop();
  });

  it('never hands setTimeout more than it can wait, and fires a time 60 days away only when it comes', () => {
    vi.useFakeTimers();
    const delays: number[] = [];
    const real = globalThis.setTimeout;
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      return real(fn, ms);
    }) as typeof setTimeout);
    const fire = vi.fn();
    const t = new RetryTimer(fire);
    t.wakeAt(Date.now() + 60 * DAY);
    vi.advanceTimersByTime(59 * DAY);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(DAY + 10);
    expect(fire).toHaveBeenCalledTimes(1);
    expect(delays.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...delays)).toBeLessThanOrEqual(2_147_483_647);
    spy.mockRestore();
    t.stop();
  });
});
