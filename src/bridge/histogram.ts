import type { HistogramSnapshot } from './types.js';

/**
 * Estimates the q-quantile (0..1) of a bridge histogram in µs, as the upper
 * bound of the bucket holding it (log2 buckets, so within a factor of 2).
 *
 * @example histogramPercentileUs(bridge.stats('python').histograms.run, 0.99)
 */
export function histogramPercentileUs(h: HistogramSnapshot, q: number): number {
  if (h.count === 0) return 0;
  const target = Math.max(1, Math.ceil(q * h.count));
  let seen = 0;
  for (const [i, n] of h.counts.entries()) {
    seen += n;
    if (seen >= target) return h.upperBoundsUs[i] ?? Infinity;
  }
  return h.upperBoundsUs.at(-1) ?? 0;
}
