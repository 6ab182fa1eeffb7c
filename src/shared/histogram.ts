/**
 * A fixed-bucket histogram cheap enough for the hot path (one array
 * increment per observation) whose snapshots travel as JSON and add up: a
 * worker keeps one for its step latency and publishes the snapshot with its
 * heartbeat; an orchestrator's /metrics sums the snapshots of every worker.
 */
export interface BucketSnapshot {
  /** Upper bounds (inclusive), ascending; a last implicit bucket is +Inf. */
  bounds: number[];
  /** One count per bound, plus the +Inf bucket (not cumulative). */
  counts: number[];
  sum: number;
  count: number;
}

export class BucketHistogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  snapshot(): BucketSnapshot {
    return { bounds: [...this.bounds], counts: [...this.counts], sum: this.sum, count: this.count };
  }
}

/** Add snapshots with the same bounds (others are skipped). */
export function addSnapshots(snapshots: BucketSnapshot[]): BucketSnapshot | undefined {
  const first = snapshots[0];
  if (!first) return undefined;
  const key = first.bounds.join(',');
  const out: BucketSnapshot = { bounds: [...first.bounds], counts: new Array(first.counts.length).fill(0), sum: 0, count: 0 };
  for (const s of snapshots) {
    if (s.bounds.join(',') !== key || s.counts.length !== out.counts.length) continue;
    s.counts.forEach((c, i) => (out.counts[i]! += c));
    out.sum += s.sum;
    out.count += s.count;
  }
  return out;
}

/** Milliseconds buckets for step and task latencies. */
export const LATENCY_MS_BUCKETS = [0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 50, 100, 250, 500, 1000, 2500, 10000] as const;
