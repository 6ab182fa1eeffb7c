import { describe, expect, it } from 'vitest';
import { cdf, percentile, relativeChange, summarize } from '../../src/benchmark/stats.js';

describe("percentile (the reference script's definition: k = (n − 1)·p, linear interpolation)", () => {
  it('interpolates between neighbours', () => {
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(percentile([10, 20, 30, 40, 50], 0.95)).toBeCloseTo(48, 10); // k = 3.8 → 40 + 0.8·10
    expect(percentile([10, 20, 30, 40, 50], 0.25)).toBe(20);
  });

  it("does not depend on the input order and does not sort the caller's array", () => {
    const xs = [5, 1, 4, 2, 3];
    expect(percentile(xs, 0.5)).toBe(3);
    expect(xs).toEqual([5, 1, 4, 2, 3]);
  });

  it('gives the extremes at p = 0 and p = 1, and the value itself for one sample', () => {
    expect(percentile([3, 9, 7], 0)).toBe(3);
    expect(percentile([3, 9, 7], 1)).toBe(9);
    expect(percentile([42], 0.99)).toBe(42);
  });

  it('1..100: P50 = 50.5, P95 = 95.05, P99 = 99.01', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 0.5)).toBeCloseTo(50.5, 10);
    expect(percentile(xs, 0.95)).toBeCloseTo(95.05, 10);
    expect(percentile(xs, 0.99)).toBeCloseTo(99.01, 10);
  });

  it('rejects an empty sample and a p outside [0, 1]', () => {
    expect(() => percentile([], 0.5)).toThrow(/empty sample/);
    expect(() => percentile([1], 1.5)).toThrow(/within \[0, 1\]/);
  });
});

describe('summarize', () => {
  it('reports n, min, mean, p50, p95, p99, max, stddev rounded to 3 decimals', () => {
    const s = summarize([4, 1, 3, 2]);
    expect(s).toEqual({ n: 4, min: 1, mean: 2.5, p50: 2.5, p95: 3.85, p99: 3.97, max: 4, stddev: 1.291 });
  });
  it('has stddev 0 for one sample', () => {
    expect(summarize([7]).stddev).toBe(0);
  });
});

describe('relativeChange and cdf', () => {
  it('relative change in percent, signed', () => {
    expect(relativeChange(258.17, 255.26)).toBeCloseTo(-1.127, 3);
    expect(relativeChange(199.6, 259.26)).toBeCloseTo(29.89, 2);
  });
  it('cdf reaches 1 at the largest sample', () => {
    expect(cdf([3, 1, 2])).toEqual([
      { x: 1, f: 1 / 3 },
      { x: 2, f: 2 / 3 },
      { x: 3, f: 1 },
    ]);
  });
});
