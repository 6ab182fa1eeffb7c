/**
 * `weft bench --profile` (issue 20): where the wall time of one single-step
 * task goes, in one process and over REST, from instants the bench can
 * observe: the client's (request sent, create answered, end observed) and the
 * server's own timestamps of the same task (task created_at / completed_at,
 * the step's enqueued_at / started_at / finished_at, all clock_timestamp()
 * on the same machine's clock). Medians and P95 of each segment over the
 * samples; the segments add up to the client's total.
 */
import type { ClientTimes } from './in-process.js';
import { percentile } from './stats.js';
import { withConnection } from '../store/one-off.js';

/** One task's instants, Unix ms: the client's and the server's. */
export interface ProfileSample {
  client: ClientTimes;
  created_at: number;
  enqueued_at: number;
  started_at: number;
  finished_at: number;
  completed_at: number;
}

export interface ProfileSegment {
  name: string;
  /** What happens in it. */
  covers: string;
  p50_ms: number;
  p95_ms: number;
}

/** The segments of one sample, in order; they sum to client.ended − client.sent. */
const SEGMENTS: Array<{ name: string; covers: string; of: (s: ProfileSample) => number }> = [
  {
    name: 'submit → task row',
    covers: 'HTTP request in and parsed (REST), template look-up, input_schema check, the create statement reaching its INSERT',
    of: (s) => s.created_at - s.client.sent,
  },
  {
    name: 'create_task: task row → step enqueued',
    covers: 'inside weft.create_task: task, transitions, steps, edges',
    of: (s) => s.enqueued_at - s.created_at,
  },
  {
    name: 'enqueued → claimed (started_at)',
    covers: "the create's commit (fsync), the wake-up (NOTIFY or publish), the worker's claim statement",
    of: (s) => s.started_at - s.enqueued_at,
  },
  {
    name: 'claimed → finished (finished_at)',
    covers: "the claim's commit, the handler, the finish statement reaching the step's UPDATE",
    of: (s) => s.finished_at - s.started_at,
  },
  { name: 'finished → task complete', covers: 'the rest of weft.finish_steps: the task row', of: (s) => s.completed_at - s.finished_at },
  {
    name: 'task complete → end observed',
    covers: "the finish's commit (fsync), the task-end notification, the waiter's wake-up, its state read, the task view's JSON, the HTTP answer (REST)",
    of: (s) => s.client.ended - s.completed_at,
  },
];

/** Read the server's instants of these single-step tasks and pair them with the client's. */
export async function profileSamples(databaseUrl: string, tasks: Array<{ id: string; at: ClientTimes }>): Promise<ProfileSample[]> {
  const { rows } = await withConnection(databaseUrl, (c) =>
    c.query<{ id: string; created_at: number; enqueued_at: number; started_at: number; finished_at: number; completed_at: number }>(
      `SELECT t.id, extract(epoch FROM t.created_at)::float8 * 1000 AS created_at, extract(epoch FROM s.enqueued_at)::float8 * 1000 AS enqueued_at,
              extract(epoch FROM s.started_at)::float8 * 1000 AS started_at, extract(epoch FROM s.finished_at)::float8 * 1000 AS finished_at,
              extract(epoch FROM t.completed_at)::float8 * 1000 AS completed_at
         FROM weft.tasks t JOIN weft.steps s ON s.task_id = t.id WHERE t.id = ANY($1::uuid[])`,
      [tasks.map((t) => t.id)],
    ),
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  return tasks.map((t) => {
    const r = byId.get(t.id);
    if (!r) throw new Error(`profile: task ${t.id} is not in the database`);
    return {
      client: t.at,
      created_at: r.created_at,
      enqueued_at: r.enqueued_at,
      started_at: r.started_at,
      finished_at: r.finished_at,
      completed_at: r.completed_at,
    };
  });
}

/** P50 and P95 of each segment, and of the whole (client sent → end observed). */
export function profileSegments(samples: ProfileSample[]): { segments: ProfileSegment[]; total: { p50_ms: number; p95_ms: number } } {
  const segments = SEGMENTS.map((seg) => {
    const xs = samples.map(seg.of);
    return { name: seg.name, covers: seg.covers, p50_ms: percentile(xs, 0.5), p95_ms: percentile(xs, 0.95) };
  });
  const totals = samples.map((s) => s.client.ended - s.client.sent);
  return { segments, total: { p50_ms: percentile(totals, 0.5), p95_ms: percentile(totals, 0.95) } };
}

/** A Markdown table of the breakdowns side by side (one column pair per setting). */
export function profileTable(columns: Array<{ label: string; samples: ProfileSample[] }>): string {
  const done = columns.map((c) => ({ label: c.label, n: c.samples.length, ...profileSegments(c.samples) }));
  const f = (v: number) => `${v.toFixed(2)} ms`;
  const head = `| segment | ${done.map((d) => `${d.label} P50 | P95`).join(' | ')} | what it covers |`;
  const rule = `|---|${done.map(() => '---:|---:').join('|')}|---|`;
  const rows = SEGMENTS.map(
    (seg, i) => `| ${seg.name} | ${done.map((d) => `${f(d.segments[i]!.p50_ms)} | ${f(d.segments[i]!.p95_ms)}`).join(' | ')} | ${seg.covers} |`,
  );
  const total = `| **submit → end observed** (n = ${done.map((d) => d.n).join(' / ')}) | ${done.map((d) => `**${f(d.total.p50_ms)}** | ${f(d.total.p95_ms)}`).join(' | ')} | the client's whole wait; segment medians need not add up to it exactly |`;
  return [head, rule, ...rows, total].join('\n');
}
