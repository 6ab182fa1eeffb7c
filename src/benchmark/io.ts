/**
 * The I/O-bound tier of weft bench (issue 16), the pure half: its variants,
 * the context each task gets, the check of each result, and the medians and
 * targets the report quotes. The measuring half is io-tier.ts.
 *
 * A variant is one runtime and one way of waiting: the step sleeps (`sleep`)
 * or GETs the bench's local test server, which answers after the same wait
 * (`http`). Templates and handlers live under bench/io/, not in the shipped
 * templates/ and handlers/.
 *
 * @example
 * ioRows(doc.io!).map((r) => `${r.label} N=${r.tasks}: ${r.tasks_per_s.toFixed(0)} tasks/s`)
 */
import type { TaskOutcome } from './scenarios.js';
import { canonicalJson } from './scenarios.js';
import { percentile } from './stats.js';
import type { Target } from './analysis.js';
import type { IoResult, IoSection, Runtime } from './types.js';

/** How long a step waits, ms (the test server answers after as long). */
export const IO_WAIT_MS = 100;
/** Tasks created at once, by default. */
export const IO_TASKS: readonly number[] = [32, 256];
/** --concurrency of the tier's workers: every task of the largest N runs at once. */
export const IO_CONCURRENCY = 256;

export interface IoVariant {
  id: string;
  kind: IoResult['kind'];
  runtime: Runtime;
  /** The runtime and how it waits, as the report prints it. */
  label: string;
  namespace: string;
  name: string;
}

const variant = (runtime: Runtime, kind: IoResult['kind'], label: string, name: string = kind, id = `${runtime}_${kind}`): IoVariant => ({
  id,
  kind,
  runtime,
  label,
  namespace: `bench_io_${runtime}`,
  name,
});

/** Every variant, in the order a round runs them and the report lists them; native first (the ratios' base). */
export const IO_VARIANTS: readonly IoVariant[] = [
  variant('native', 'sleep', 'native: await setTimeout'),
  variant('typescript', 'sleep', 'typescript (bridge): await setTimeout'),
  variant('python', 'sleep', 'python def: time.sleep'),
  variant('python', 'sleep', 'python async def: asyncio.sleep', 'sleep_async', 'python_async_sleep'),
  variant('ruby', 'sleep', 'ruby: sleep'),
  variant('native', 'http', 'native: fetch'),
  variant('typescript', 'http', 'typescript (bridge): fetch'),
  variant('python', 'http', 'python def: urllib.request'),
  variant('python', 'http', 'python async def: asyncio streams', 'http_async', 'python_async_http'),
  variant('ruby', 'http', 'ruby: Net::HTTP'),
];

/** The context of one task: a sleep of `waitMs`, or a GET of the test server at `origin` that carries the task's id. */
export function ioContext(v: IoVariant, id: string, origin: string, waitMs = IO_WAIT_MS): Record<string, unknown> {
  return v.kind === 'sleep' ? { id, ms: waitMs } : { id, url: `${origin}/wait?id=${encodeURIComponent(id)}` };
}

/** The result a correct step returns for `context`. */
function expectedResult(v: IoVariant, context: Record<string, unknown>): unknown {
  return v.kind === 'sleep' ? { id: context.id, slept_ms: context.ms } : { id: context.id, status: 200, echo: context.id };
}

/**
 * Check one finished task of the tier: undefined when it completed with the
 * result its context asks for, else a sentence saying what was found and
 * what was expected.
 */
export function verifyIoOutcome(v: IoVariant, view: TaskOutcome, context: Record<string, unknown>): string | undefined {
  if (view.state !== 'complete') {
    const err = view.steps[0] && (view.steps[0] as { error?: { message?: string } }).error;
    return `task ended in state ${view.state}, expected complete${err?.message ? ` (its step failed: ${err.message})` : ''}`;
  }
  if (view.steps.length !== 1) return `task has ${view.steps.length} steps, expected 1`;
  const step = view.steps[0]!;
  if (step.state !== 'complete') return `step ${step.name} is ${step.state}, expected complete`;
  const want = expectedResult(v, context);
  return canonicalJson(step.result) === canonicalJson(want)
    ? undefined
    : `step ${step.name} returned ${JSON.stringify(step.result)}, expected ${JSON.stringify(want)}`;
}

const median = (xs: number[]): number => (xs.length ? percentile(xs, 0.5) : NaN);

/** One line of the report's I/O table: medians over the rounds. */
export interface IoRow {
  variant: string;
  label: string;
  kind: IoResult['kind'];
  runtime: Runtime;
  tasks: number;
  rounds: number;
  tasks_per_s: number;
  /** tasks/s ÷ the native variant's of the same kind and N in the same round (median over rounds); undefined without native. */
  vs_native?: number;
  step_p50: number;
  step_p95: number;
  /** step P95 − the wait: what the runtime added at the 95th percentile. */
  p95_over_wait: number;
}

/** The I/O table: one row per variant and task count, medians over the rounds. */
export function ioRows(io: IoSection): IoRow[] {
  return io.results.map((r) => {
    const native = io.results.find((n) => n.runtime === 'native' && n.kind === r.kind && n.tasks === r.tasks);
    const ratios = r.rounds.flatMap((x) => {
      const base = native?.rounds.find((n) => n.round === x.round)?.tasks_per_s;
      return base ? [x.tasks_per_s / base] : [];
    });
    const p95 = median(r.rounds.map((x) => x.step.p95));
    return {
      variant: r.variant,
      label: r.label,
      kind: r.kind,
      runtime: r.runtime,
      tasks: r.tasks,
      rounds: r.rounds.length,
      tasks_per_s: median(r.rounds.map((x) => x.tasks_per_s)),
      ...(ratios.length ? { vs_native: median(ratios) } : {}),
      step_p50: median(r.rounds.map((x) => x.step.p50)),
      step_p95: p95,
      p95_over_wait: p95 - io.wait_ms,
    };
  });
}

/** Issue 16's targets for the tier, each MET / MISSED with the figure (n/a when that variant or task count was not measured). */
export function ioTargets(io: IoSection): Target[] {
  const rows = ioRows(io);
  const row = (variant: string, tasks: number) => rows.find((r) => r.variant === variant && r.tasks === tasks);
  const out: Target[] = [];
  const add = (name: string, target: string, value: number | undefined, fmt: (v: number) => string, ok: (v: number) => boolean) =>
    out.push({
      name,
      target,
      reference: 'n/a',
      value: value === undefined || !Number.isFinite(value) ? 'not measured' : fmt(value),
      status: value === undefined || !Number.isFinite(value) ? 'n/a' : ok(value) ? 'MET' : 'MISSED',
    });
  const ratio = (v: number) => `${v.toFixed(2)}×`;
  const ms = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(1)} ms`;
  for (const [tasks, variants] of [
    [32, ['python_sleep', 'python_async_sleep', 'ruby_sleep']],
    [256, ['python_async_sleep', 'ruby_sleep']],
  ] as const) {
    for (const v of variants) {
      const r = row(v, tasks);
      const label = IO_VARIANTS.find((x) => x.id === v)!.label;
      add(`tasks/s ÷ native, ${tasks} × ${io.wait_ms} ms sleep (${label})`, '≥ 0.90×', r?.vs_native, ratio, (x) => x >= 0.9);
    }
  }
  for (const v of IO_VARIANTS.filter((x) => x.kind === 'sleep')) {
    const r = row(v.id, 32);
    add(`step P95 − ${io.wait_ms} ms, 32 in flight (${v.label})`, '≤ 5 ms', r?.p95_over_wait, ms, (x) => x <= 5);
  }
  return out;
}
