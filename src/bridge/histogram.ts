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
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i];
    if (seen >= target) return h.upperBoundsUs[i];
  }
  return h.upperBoundsUs[h.upperBoundsUs.length - 1];
}
