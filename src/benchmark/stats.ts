/**
 * Percentiles and summary statistics for benchmark samples (pure, no I/O).
 *
 * The percentile is the reference's definition (reference-system.md §8.4), so
 * our P50/P95 mean the same thing as the seed's: sort; k = (n − 1)·p;
 * f = ⌊k⌋, c = min(f + 1, n − 1); value = x[f] + (x[c] − x[f])·(k − f).
 * Unlike the reference we report p95/p99 for any n ≥ 1 (with n = 10 a P99 is
 * just the interpolated top; `n` is always printed beside it).
 *
 * @example
 * percentile([1, 2, 3, 4], 0.5) // 2.5
 * summarize([10, 12, 11]).p50   // 11
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of an empty sample: run at least one sample');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`percentile p must be within [0, 1], got ${p}`);
  const x = [...values].sort((a, b) => a - b);
  return percentileSorted(x, p);
}

/** `percentile` for an already ascending array (no copy). */
export function percentileSorted(x: readonly number[], p: number): number {
  const n = x.length;
  const k = (n - 1) * p;
  const f = Math.floor(k);
  const c = Math.min(f + 1, n - 1);
  return x[f]! + (x[c]! - x[f]!) * (k - f);
}

export interface Summary {
  n: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Sample standard deviation (n − 1); 0 for n < 2. */
  stddev: number;
}

/** n, min, mean, p50, p95, p99, max and standard deviation, rounded to 3 decimals. */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new RangeError('summary of an empty sample: run at least one sample');
  const x = [...values].sort((a, b) => a - b);
  const n = x.length;
  const mean = x.reduce((s, v) => s + v, 0) / n;
  const variance = n < 2 ? 0 : x.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
  return {
    n,
    min: round3(x[0]!),
    mean: round3(mean),
    p50: round3(percentileSorted(x, 0.5)),
    p95: round3(percentileSorted(x, 0.95)),
    p99: round3(percentileSorted(x, 0.99)),
    max: round3(x[n - 1]!),
    stddev: round3(Math.sqrt(variance)),
  };
}

/** Relative change from a to b in percent, e.g. variance(100, 105) = 5. */
export function relativeChange(a: number, b: number): number {
  if (a === 0) return b === 0 ? 0 : Infinity;
  return ((b - a) / a) * 100;
}

export function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** Cumulative distribution: sorted values with their cumulative fraction (i + 1) / n. */
export function cdf(values: readonly number[]): Array<{ x: number; f: number }> {
  const x = [...values].sort((a, b) => a - b);
  return x.map((v, i) => ({ x: v, f: (i + 1) / x.length }));
}
