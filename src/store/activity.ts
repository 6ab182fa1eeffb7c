import type { Database } from './database.js';

/**
 * What the dashboard's throughput screen shows, computed from the rows the
 * engine writes anyway (no extra bookkeeping on the hot path): steps
 * finished per interval by namespace and runtime, task latency percentiles
 * by namespace, and each runtime's step time split into queue wait
 * (enqueued → started) and run (started → finished).
 *
 * Both queries read a time window by finished_at / completed_at. Neither
 * column is indexed (an index on steps would cost every step update), so on
 * a large history they scan; the window keeps the work bounded per row.
 */
export interface Activity {
  window_s: number;
  bucket_s: number;
  /** Unix seconds of each bucket's start, oldest first. */
  buckets: number[];
  /** Steps finished per second in each bucket, by `namespace/runtime`. */
  steps_per_s: Record<string, number[]>;
  /** Task latency (ms) over the window, by namespace, and for all (`*`). */
  task_latency: Record<string, { n: number; p50: number; p90: number; p99: number; max: number }>;
  /** Task latency p50 / p99 per bucket, all namespaces. */
  task_latency_series: { p50: Array<number | null>; p99: Array<number | null> };
  /** Per runtime: median and p99 of queue wait and run time (ms) over the window. */
  step_phases: Record<string, { n: number; queue_p50: number; queue_p99: number; run_p50: number; run_p99: number }>;
}

export async function readActivity(db: Database, windowS: number, bucketS: number): Promise<Activity> {
  const now = Math.floor(Date.now() / 1000 / bucketS) * bucketS;
  const start = now - windowS + bucketS;
  const buckets = Array.from({ length: Math.round(windowS / bucketS) }, (_, i) => start + i * bucketS);
  const index = new Map(buckets.map((b, i) => [b, i]));
  const [steps, tasks, series, phases] = await Promise.all([
    db.query<{ b: number; key: string; n: number }>(
      `SELECT (floor(extract(epoch FROM s.finished_at) / $2) * $2)::bigint AS b, t.namespace || '/' || s.runtime AS key, count(*)::int AS n
         FROM weft.steps s JOIN weft.tasks t ON t.id = s.task_id
        WHERE s.finished_at >= to_timestamp($1) GROUP BY 1, 2`,
      [start, bucketS],
    ),
    db.query<{ namespace: string | null; n: number; p50: number; p90: number; p99: number; max: number }>(
      `SELECT namespace, count(*)::int AS n,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.9) WITHIN GROUP (ORDER BY ms) AS p90,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99, max(ms)::float8 AS max
         FROM (SELECT namespace, extract(epoch FROM completed_at - created_at) * 1000 AS ms FROM weft.tasks
                WHERE completed_at >= to_timestamp($1) AND state = 'complete') x
        GROUP BY GROUPING SETS ((namespace), ())`,
      [start],
    ),
    db.query<{ b: number; p50: number; p99: number }>(
      `SELECT (floor(extract(epoch FROM completed_at) / $2) * $2)::bigint AS b,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at) * 1000) AS p50,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at) * 1000) AS p99
         FROM weft.tasks WHERE completed_at >= to_timestamp($1) AND state = 'complete' GROUP BY 1`,
      [start, bucketS],
    ),
    db.query<{ runtime: string; n: number; queue_p50: number; queue_p99: number; run_p50: number; run_p99: number }>(
      `SELECT runtime, count(*)::int AS n,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY q) AS queue_p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY q) AS queue_p99,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY r) AS run_p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY r) AS run_p99
         FROM (SELECT runtime, extract(epoch FROM started_at - enqueued_at) * 1000 AS q, extract(epoch FROM finished_at - started_at) * 1000 AS r
                 FROM weft.steps WHERE finished_at >= to_timestamp($1) AND started_at IS NOT NULL AND enqueued_at IS NOT NULL) x
        GROUP BY runtime`,
      [start],
    ),
  ]);
  const steps_per_s: Record<string, number[]> = {};
  for (const r of steps.rows) {
    const i = index.get(Number(r.b));
    if (i === undefined) continue;
    (steps_per_s[r.key] ??= buckets.map(() => 0))[i] = r.n / bucketS;
  }
  const task_latency: Activity['task_latency'] = {};
  for (const r of tasks.rows) task_latency[r.namespace ?? '*'] = { n: r.n, p50: r.p50, p90: r.p90, p99: r.p99, max: r.max };
  const p50: Array<number | null> = buckets.map(() => null);
  const p99: Array<number | null> = buckets.map(() => null);
  for (const r of series.rows) {
    const i = index.get(Number(r.b));
    if (i === undefined) continue;
    p50[i] = r.p50;
    p99[i] = r.p99;
  }
  const step_phases: Activity['step_phases'] = {};
  for (const r of phases.rows) step_phases[r.runtime] = { n: r.n, queue_p50: r.queue_p50, queue_p99: r.queue_p99, run_p50: r.run_p50, run_p99: r.run_p99 };
  return { window_s: windowS, bucket_s: bucketS, buckets, steps_per_s, task_latency, task_latency_series: { p50, p99 }, step_phases };
}
