/**
 * `weft bench`: the seed's end-to-end benchmark, done right (issue 5).
 *
 * For each backend and run: start a fresh local cluster (ClusterSupervisor),
 * run every selected scenario (warm-up, then N samples), the throughput
 * scenario on the full cluster, then restart with 1 orchestrator + 1 native
 * worker for the 1+1 throughput figure. After the runs, the I/O-bound tier
 * (io-tier.ts) starts a cluster of its own on the same database. Writes
 * `bench/results/<timestamp>-<backend>/{percentiles.json, report.md, *.svg}`
 * and, with --write-docs, `docs/benchmarks.md`.
 *
 * A sample is timed from sending POST /v1/tasks to the moment the long-poll
 * GET /v1/tasks/:id/wait returns (the server answers when the task ends; no
 * sleep loop), over one keep-alive connection per in-flight task. Every
 * sample's results are checked; a wrong one stops the bench with exit 1.
 *
 * @example
 * weft bench --quick                       # 10 samples, one run, one I/O round, pg (a few minutes)
 * weft bench --backend both --runs 2 --write-docs
 * weft bench --scenarios io --io-rounds 5   # only the I/O-bound tier
 * weft bench --report bench/results/2026-11-27T19-30-00Z-pg   # regenerate report.md from the JSON
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { withConnection } from '../store/one-off.js';
import { brokerVersion } from '../messaging/broker-admin.js';
import { loadConfig, processEnvironment, type WeftConfig } from '../shared/config.js';
import { configuredLogger, type Logger } from '../shared/logger.js';
import { BACKENDS } from '../shared/backends.js';
import type { Runtime } from '../shared/runtimes.js';
import { packageRoot } from '../shared/paths.js';
import { generateProductsCsv } from '../examples/products.js';
import type { ClusterSupervisor } from '../ops/cluster.js';
import { activeClusters, BenchFailure, createAndWait, startCluster } from './client.js';
import { contextFor, expectedCsvAggregate, IO_TIER_ID, selectScenarios, THROUGHPUT_ID, verifyOutcome, type ScenarioDef } from './scenarios.js';
import { measureIoTier } from './io-tier.js';
import { percentile, summarize } from './stats.js';
import type { Backend, BenchDocument, PhaseBreakdown, RunResult, ScenarioResult, ThroughputResult } from './types.js';
import { renderReport, type BridgeResults } from './report.js';
import { meterWindow, type WindowCost } from './server-meter.js';
import { requestJson as httpJson } from '../shared/http-json.js';
import { seedHistory } from './history.js';
import { measureInProcess, type ClientTimes } from './in-process.js';
import { profileSamples, profileTable } from './profile.js';
import { SCENARIOS } from './scenarios.js';
import { acquireEmbeddedPostgres } from '../ops/embedded-postgres.js';
import { openDatabase } from '../store/database.js';

interface TaskSample {
  client_ms: number;
  /** POST /v1/tasks round trip (the create transaction and first dispatch included). */
  post_ms: number;
  server_ms: number;
  view: any;
}

/** Create one task and wait for it through the long-poll; check its results. */
async function runOne(base: string, s: ScenarioDef, context: Record<string, unknown>, csvExpected?: Record<string, unknown>): Promise<TaskSample> {
  const { view, post_ms, client_ms } = await createAndWait(base, { namespace: s.namespace, name: s.name, context }, s.timeoutMs, s.id);
  const problem = verifyOutcome(s, view, csvExpected);
  if (problem) throw new BenchFailure(`${s.id}: task ${view.id} has a wrong result: ${problem}`);
  return { client_ms, post_ms, server_ms: Number(view.duration_ms), view };
}

const t = (d: string | null | undefined) => (d ? new Date(d).getTime() : NaN);

/** Where one chain task's time went, from the step timestamps the wait returns (ms resolution). */
export function phasesOf(view: any, clientMs: number, postMs: number): PhaseBreakdown {
  const steps = [...(view.steps as any[])].sort((a, b) => t(a.enqueued_at) - t(b.enqueued_at));
  let queue = 0;
  let exec = 0;
  let orch = 0;
  steps.forEach((s, i) => {
    queue += t(s.started_at) - t(s.enqueued_at);
    exec += t(s.finished_at) - t(s.started_at);
    if (i > 0) orch += t(s.enqueued_at) - t(steps[i - 1].finished_at);
  });
  return {
    create_ms: t(steps[0]?.enqueued_at) - t(view.created_at),
    queue_ms: queue,
    execute_ms: exec,
    orchestrate_ms: orch,
    finalize_ms: t(view.completed_at) - t(steps.at(-1)?.finished_at),
    client_ms: clientMs - Number(view.duration_ms),
    post_ms: postMs,
  };
}

function medianPhases(list: PhaseBreakdown[]): PhaseBreakdown | undefined {
  if (!list.length) return undefined;
  const keys = Object.keys(list[0]!) as Array<keyof PhaseBreakdown>;
  const median = (k: keyof PhaseBreakdown) => {
    const v = list.map((p) => p[k]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
    return v.length ? Math.round(percentile(v, 0.5) * 1000) / 1000 : NaN;
  };
  return Object.fromEntries(keys.map((k) => [k, median(k)])) as unknown as PhaseBreakdown;
}

// ------------------------------------------------------------------------------------------------
// Progress

class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private last = 0;
  update(label: string, k: number, n: number, samples: number[]): void {
    if (!this.tty) return;
    const now = Date.now();
    if (k !== n && now - this.last < 80) return;
    this.last = now;
    const p50 = samples.length ? `${percentile(samples, 0.5).toFixed(2)} ms` : '…';
    process.stderr.write(`\r\x1b[2K  ${label.padEnd(34)} sample ${String(k).padStart(3)}/${n}  P50 ${p50}`);
  }
  line(text: string): void {
    process.stderr.write(`${this.tty ? '\r\x1b[2K' : ''}${text}\n`);
  }
}

// ------------------------------------------------------------------------------------------------
// Environment: machine, versions, commit

function run(cmd: string, args: string[], cwd = packageRoot()): string | null {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 15_000 }).trim();
  } catch {
    return null;
  }
}

function pythonVersion(config: WeftConfig): string | null {
  const home = config.pythonHome || run(process.execPath, [join(packageRoot(), 'scripts', 'build-native.mjs'), '--flags', 'py-home']);
  const py = home ? join(home, 'bin', 'python3') : 'python3';
  return run(existsSync(py) ? py : 'python3', ['-c', 'import sys; print(sys.version.split()[0])']);
}

async function postgresVersion(url: string): Promise<string | null> {
  return withConnection(url, async (c) => (await c.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? null).catch(() => null);
}

async function rabbitVersion(url: string): Promise<string | null> {
  return (await brokerVersion(url)) ?? run('rabbitmqctl', ['version']);
}

function machine(): BenchDocument['machine'] {
  return {
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memory_gb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

function gitInfo(): BenchDocument['git'] {
  const status = run('git', ['status', '--porcelain', '--untracked-files=no']);
  return {
    commit: run('git', ['rev-parse', 'HEAD']),
    branch: run('git', ['rev-parse', '--abbrev-ref', 'HEAD']),
    dirty: status === null ? null : status.length > 0,
  };
}

/** The newest `bench/results/bridge-*.json` (from `npm run bench:bridge`), if any. */
export function latestBridgeResults(dir = join(packageRoot(), 'bench', 'results')): BridgeResults | undefined {
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir)
    .filter((f) => /^bridge-.*\.json$/.test(f))
    .sort();
  const last = files.at(-1);
  if (!last) return undefined;
  try {
    return { file: `bench/results/${last}`, ...(JSON.parse(readFileSync(join(dir, last), 'utf8')) as Omit<BridgeResults, 'file'>) };
  } catch {
    return undefined;
  }
}

/** Write `<dir>/<file>` and its charts (in `<dir>/<chartsSubdir>/` when given). */
export function writeReports(docs: BenchDocument[], o: { dir: string; file: string; chartsSubdir?: string; bridge?: BridgeResults }): void {
  const prefix = o.chartsSubdir ? `${o.chartsSubdir}/` : '';
  const { markdown, charts } = renderReport(docs, { bridge: o.bridge, chartPrefix: prefix });
  const chartDir = join(o.dir, o.chartsSubdir ?? '');
  mkdirSync(chartDir, { recursive: true });
  for (const [name, svg] of Object.entries(charts)) writeFileSync(join(chartDir, name), svg);
  writeFileSync(join(o.dir, o.file), markdown);
}

// ------------------------------------------------------------------------------------------------
// The runner

export interface BenchOptions {
  backend: Backend | 'both';
  runs: number;
  samples: number;
  warmup: number;
  scenarios?: string;
  quick: boolean;
  basePort?: number;
  orchestrators: number;
  workersPerRuntime: number;
  concurrency: number;
  inFlight: number;
  throughputSeconds: number;
  /** Single-step tasks sent through POST /v1/tasks/batch after the 1+1 throughput window (0: skip). */
  batchTasks: number;
  /** Finished steps written into the tables before the history scenario (0: skip it). */
  historySteps: number;
  /** Rounds of the I/O-bound tier (every variant at every task count once per round). */
  ioRounds: number;
  /** Task counts of the I/O-bound tier, e.g. [32, 256]. */
  ioTasks: number[];
  /** Sample k of every scenario before sample k + 1 of any (default true). */
  interleave: boolean;
  out: string;
  writeDocs: boolean;
  report?: string[];
  /** Only profile one single-step task (profile.ts): in one process and over REST, `samples` each. */
  profile?: boolean;
}

function stopOnSignal(progress: Progress): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    progress.line(`\n${signal}: stopping the benchmark cluster…`);
    void Promise.allSettled([...activeClusters].map((c) => c.stop())).then(() => process.exit(130));
  };
  process.once('SIGINT', handle);
  process.once('SIGTERM', handle);
}

/** The products CSV: its name in the examples data folder, and the aggregate a correct run computes from it. */
type Csv = { file: string; expected: Record<string, unknown> };

/** One sample of a scenario: `i` picks the orchestrator for round-robin. */
async function takeSample(
  s: ScenarioDef,
  urls: string[],
  i: number,
  csv: Csv,
): Promise<{ client_ms: number; server_ms: number; post_ms?: number; view?: any }> {
  if (s.mode === 'concurrent') {
    const t0 = performance.now();
    const both = await Promise.all(urls.map((u, k) => runOne(u, s, contextFor(s, { instance: k }))));
    return { client_ms: performance.now() - t0, server_ms: Math.max(...both.map((b) => b.server_ms)) };
  }
  const base = s.mode === 'round_robin' ? urls[i % urls.length]! : urls[0]!;
  return runOne(base, s, contextFor(s, { csvFile: csv.file }), s.pattern === 'csv' ? csv.expected : undefined);
}

interface Collector {
  s: ScenarioDef;
  client: number[];
  server: number[];
  phases: PhaseBreakdown[];
}

function finishRun(c: Collector, runNo: number, progress: Progress, label = c.s.id): RunResult {
  const result: RunResult = {
    run: runNo,
    client: summarize(c.client),
    server: summarize(c.server),
    samples_ms: c.client.map((v) => Math.round(v * 1000) / 1000),
    server_ms: c.server,
    verified: c.client.length,
    ...(c.phases.length ? { phases_p50: medianPhases(c.phases) } : {}),
  };
  progress.line(
    `  ${`run ${runNo} · T${c.s.tier} ${label}`.padEnd(34)} n=${result.client.n} P50 ${result.client.p50.toFixed(2)} ms  P95 ${result.client.p95.toFixed(2)} ms  server P50 ${result.server.p50.toFixed(2)} ms  ✓ results`,
  );
  return result;
}

/**
 * Measure every scenario of one run. Interleaved (the default): warm-up
 * rounds, then sample k of every scenario before sample k + 1 of any, so a
 * change in the machine's background load during the run lands on every
 * scenario alike and same-run comparisons (FFI overhead vs native,
 * diamond vs linear) stay fair. `--no-interleave` runs them one after the
 * other, as the reference's Criterion groups did.
 */
async function measureScenarios(
  scenarios: ScenarioDef[],
  urls: string[],
  opts: BenchOptions,
  runNo: number,
  csv: Csv,
  progress: Progress,
  label?: string,
): Promise<Map<string, RunResult>> {
  const cols: Collector[] = scenarios.map((s) => ({ s, client: [], server: [], phases: [] }));
  const out = new Map<string, RunResult>();
  const record = (c: Collector, i: number, sample: Awaited<ReturnType<typeof takeSample>>) => {
    if (i < opts.warmup) return;
    c.client.push(sample.client_ms);
    c.server.push(sample.server_ms);
    if (c.s.sequential && sample.view) c.phases.push(phasesOf(sample.view, sample.client_ms, sample.post_ms ?? NaN));
  };
  const total = opts.warmup + opts.samples;
  if (opts.interleave) {
    for (let i = 0; i < total; i++) {
      for (const c of cols) {
        record(c, i, await takeSample(c.s, urls, i, csv));
        progress.update(`run ${runNo} · ${i < opts.warmup ? 'warm-up' : `T${c.s.tier} ${c.s.id}`}`, Math.max(0, i + 1 - opts.warmup), opts.samples, c.client);
      }
    }
    for (const c of cols) out.set(c.s.id, finishRun(c, runNo, progress, label));
  } else {
    for (const c of cols) {
      for (let i = 0; i < total; i++) {
        record(c, i, await takeSample(c.s, urls, i, csv));
        progress.update(`run ${runNo} · T${c.s.tier} ${c.s.id}`, Math.max(0, i + 1 - opts.warmup), opts.samples, c.client);
      }
      out.set(c.s.id, finishRun(c, runNo, progress, label));
    }
  }
  return out;
}

/** The tasks a throughput window keeps in flight: 4-step chains, or single-step tasks (issue 20). */
const THROUGHPUT_SHAPES = {
  linear: { pattern: 'linear', namespace: 'e2e_linear', name: 'mathematical_sequence', steps: 4, label: '' },
  single: { pattern: 'single', namespace: 'e2e_single', name: 'one_step', steps: 1, label: ' single-step' },
} as const;

/** Many tasks in flight for a while, each through POST /v1/tasks and its long-poll: steps completed per second. */
async function measureThroughput(
  topology: ThroughputResult['topology'],
  sup: ClusterSupervisor,
  workers: number,
  opts: BenchOptions,
  runNo: number,
  progress: Progress,
  shape: keyof typeof THROUGHPUT_SHAPES = 'linear',
): Promise<ThroughputResult> {
  const urls = sup.orchestratorUrls();
  const { label, ...task } = THROUGHPUT_SHAPES[shape];
  const s = {
    id: 'throughput',
    tier: 1,
    label: 'throughput',
    runtime: 'native',
    ...task,
    sequential_stages: task.steps,
    mode: 'single',
    timeoutMs: 30_000,
    sequential: false,
  } as const satisfies ScenarioDef;
  // Warm the connections and the workers first.
  await Promise.all(Array.from({ length: Math.min(opts.inFlight, 16) }, (_, i) => runOne(urls[i % urls.length]!, s, contextFor(s))));
  const latencies: number[] = [];
  let next = 0;
  const { cost } = await meterWindow(sup.database, processGroups(sup), async () => {
    const start = performance.now();
    const end = start + opts.throughputSeconds * 1000;
    let lastTick = 0;
    const lane = async () => {
      while (performance.now() < end) {
        const r = await runOne(urls[next++ % urls.length]!, s, contextFor(s));
        if (performance.now() <= end) latencies.push(r.client_ms);
        if (process.stderr.isTTY && performance.now() - lastTick > 250) {
          lastTick = performance.now();
          process.stderr.write(
            `\r\x1b[2K  run ${runNo} · throughput ${topology}${label}  ${latencies.length} tasks  ${((latencies.length * s.steps) / ((performance.now() - start) / 1000)).toFixed(0)} steps/s`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: opts.inFlight }, lane));
  });
  const seconds = opts.throughputSeconds;
  const tasks = latencies.length;
  const out: ThroughputResult = {
    topology,
    scenario: shape,
    run: runNo,
    orchestrators: urls.length,
    workers,
    in_flight: opts.inFlight,
    duration_s: seconds,
    tasks,
    steps: tasks * s.steps,
    steps_per_s: Math.round((tasks * s.steps * 10) / seconds) / 10,
    tasks_per_s: Math.round((tasks * 10) / seconds) / 10,
    latency: summarize(latencies.length ? latencies : [0]),
    verified: tasks,
    ...windowFigures(cost, tasks * s.steps),
  };
  progress.line(
    `  run ${runNo} · throughput ${`${topology}${label}`.padEnd(8)} ${out.steps_per_s.toFixed(0)} steps/s (${tasks} tasks in ${seconds} s, ${opts.inFlight} in flight, latency P50 ${out.latency.p50.toFixed(1)} ms${costNote(out)}) ✓ results`,
  );
  return out;
}

/** Single-step tasks submitted through POST /v1/tasks/batch (issue 20), and batches in flight at once. */
const BATCH_SIZE = 1_000;
const BATCHES_IN_FLIGHT = 2;

/**
 * `tasks` single-step tasks sent through POST /v1/tasks/batch, BATCHES_IN_FLIGHT
 * batches of BATCH_SIZE at a time; the window runs from the first batch sent to
 * the moment PostgreSQL shows the last of them complete (polled every 20 ms on
 * a connection of its own). Every task's result is checked in one query.
 */
async function measureBatchThroughput(sup: ClusterSupervisor, opts: BenchOptions, runNo: number, progress: Progress): Promise<ThroughputResult> {
  const base = sup.orchestratorUrls()[0]!;
  const total = opts.batchTasks;
  const item = (i: number) => ({ namespace: 'e2e_single', name: 'one_step', context: { even_number: 2 * ((i % 50) + 1) } });
  // Warm the endpoint, the statement and the worker with one small batch.
  await submitBatch(
    base,
    Array.from({ length: 10 }, (_, i) => item(i)),
  );
  const ids: string[] = [];
  let wallMs = 0;
  const { cost } = await meterWindow(sup.database, processGroups(sup), () =>
    withConnection(sup.database, async (watch) => {
      const t0 = performance.now();
      const parts = Array.from({ length: Math.ceil(total / BATCH_SIZE) }, (_, b) =>
        Array.from({ length: Math.min(BATCH_SIZE, total - b * BATCH_SIZE) }, (_, k) => item(b * BATCH_SIZE + k)),
      );
      let nextPart = 0;
      const lane = async () => {
        while (nextPart < parts.length) ids.push(...(await submitBatch(base, parts[nextPart++]!)));
      };
      await Promise.all(Array.from({ length: BATCHES_IN_FLIGHT }, lane));
      for (;;) {
        const { rows } = await watch.query<{ open: number }>(
          "SELECT count(*)::int AS open FROM weft.tasks WHERE id = ANY($1::uuid[]) AND state <> 'complete'",
          [ids],
        );
        if (rows[0]!.open === 0) break;
        if (performance.now() - t0 > 600_000) throw new BenchFailure(`batch throughput: ${rows[0]!.open} of ${total} tasks still open after 10 minutes`);
        await new Promise((r) => setTimeout(r, 20));
      }
      wallMs = performance.now() - t0;
    }),
  );
  const check = await withConnection(sup.database, (c) =>
    c.query<{ right: number; ms: number[] }>(
      `SELECT count(*) FILTER (WHERE (s.result #>> '{}')::numeric = power((t.context->>'even_number')::numeric, 2))::int AS right,
              array_agg(extract(epoch FROM (t.completed_at - t.created_at))::float8 * 1000) AS ms
         FROM weft.tasks t JOIN weft.steps s ON s.task_id = t.id WHERE t.id = ANY($1::uuid[])`,
      [ids],
    ),
  );
  const { right, ms } = check.rows[0]!;
  if (right !== total) throw new BenchFailure(`batch throughput: ${total - right} of ${total} single-step tasks have a wrong result`);
  const seconds = wallMs / 1000;
  const out: ThroughputResult = {
    topology: '1+1',
    scenario: 'batch_single',
    run: runNo,
    orchestrators: 1,
    workers: 1,
    in_flight: BATCHES_IN_FLIGHT,
    duration_s: Math.round(seconds * 100) / 100,
    tasks: total,
    steps: total,
    steps_per_s: Math.round((total * 10) / seconds) / 10,
    tasks_per_s: Math.round((total * 10) / seconds) / 10,
    latency: summarize(ms.map(Number)),
    verified: right,
    ...windowFigures(cost, total),
  };
  progress.line(
    `  run ${runNo} · batch 1+1      ${out.steps_per_s.toFixed(0)} steps/s (${total} single-step tasks through POST /v1/tasks/batch in ${out.duration_s} s, server latency P50 ${out.latency.p50.toFixed(1)} ms${costNote(out)}) ✓ results`,
  );
  return out;
}

/** POST one batch; its task ids (every item must be created). */
async function submitBatch(base: string, tasks: object[]): Promise<string[]> {
  const res = await httpJson('POST', `${base}/v1/tasks/batch`, { body: { tasks }, timeoutMs: 120_000 });
  const results = (res.body as { results?: Array<{ id?: string; error?: unknown }> } | undefined)?.results;
  if (res.status !== 200 || !results) throw new BenchFailure(`POST ${base}/v1/tasks/batch answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
  const failed = results.find((r) => !r.id);
  if (failed) throw new BenchFailure(`POST ${base}/v1/tasks/batch refused an item: ${JSON.stringify(failed)}`);
  return results.map((r) => r.id!);
}

/** The cluster's orchestrators and workers by pid, for the CPU meter. */
function processGroups(sup: ClusterSupervisor): Record<string, () => number[]> {
  const pidsOf = (role: 'orchestrator' | 'worker') => () =>
    sup
      .processes()
      .filter((p) => p.role === role && p.pid !== null)
      .map((p) => p.pid!);
  return { orchestrators: pidsOf('orchestrator'), workers: pidsOf('worker') };
}

/** CPU and WAL per step of a window, or why the CPU is missing. */
function windowFigures(cost: WindowCost, steps: number): Pick<ThroughputResult, 'cpu_ms_per_step' | 'cpu_unavailable' | 'wal_bytes_per_step'> {
  if (steps === 0) return {};
  return {
    wal_bytes_per_step: Math.round(cost.wal_bytes / steps),
    ...(cost.cpu_unavailable === undefined && cost.cpu_ms ? { cpu_ms_per_step: cpuPerStep(cost.cpu_ms, steps) } : {}),
    ...(cost.cpu_unavailable !== undefined ? { cpu_unavailable: cost.cpu_unavailable } : {}),
  };
}

function costNote(t: ThroughputResult): string {
  const cpu = t.cpu_ms_per_step ? `, CPU ${t.cpu_ms_per_step.total.toFixed(2)} ms/step` : t.cpu_unavailable ? `, CPU not measured: ${t.cpu_unavailable}` : '';
  return `${cpu}${t.wal_bytes_per_step !== undefined ? `, WAL ${t.wal_bytes_per_step.toLocaleString('en-US')} B/step` : ''}`;
}

function cpuPerStep(used: Record<string, number>, steps: number): NonNullable<ThroughputResult['cpu_ms_per_step']> {
  const per = (k: string) => Math.round(((used[k] ?? 0) / steps) * 1000) / 1000;
  const total = Math.round((((used.orchestrators ?? 0) + (used.workers ?? 0) + (used.postgres ?? 0)) / steps) * 1000) / 1000;
  return { total, orchestrators: per('orchestrators'), workers: per('workers'), postgres: per('postgres') };
}

/**
 * A database of its own for one backend's runs (dropped at the end), on the
 * server the bench would use (WEFT_DATABASE_URL, or the embedded one), so
 * "empty" means empty and the history scenario starts from a known size.
 */
async function benchDatabase(config: ReturnType<typeof loadConfig>, backend: Backend, log: Logger): Promise<{ url: string; drop(): Promise<void> }> {
  let admin = config.databaseUrl;
  let release: (() => Promise<void>) | undefined;
  if (!admin) {
    const embedded = await acquireEmbeddedPostgres({ home: config.home, port: config.embeddedPgPort, log: (m) => log.info(m) });
    admin = embedded.localUrl;
    release = () => embedded.release();
  }
  const name = `weft_bench_${process.pid}_${backend}`;
  const [base, query] = admin.split('?') as [string, string | undefined];
  const url = `${base.slice(0, base.lastIndexOf('/'))}/${name}${query ? `?${query}` : ''}`;
  const exec = (sql: string) => withConnection(admin, (c) => c.query(sql));
  await exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await exec(`CREATE DATABASE ${name}`);
  return {
    url,
    async drop() {
      await exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await release?.();
    },
  };
}

function toRunResult(runNo: number, samples: Array<{ ms: number; server_ms: number }>): RunResult {
  return {
    run: runNo,
    client: summarize(samples.map((x) => x.ms)),
    server: summarize(samples.map((x) => x.server_ms)),
    samples_ms: samples.map((x) => Math.round(x.ms * 1000) / 1000),
    server_ms: samples.map((x) => x.server_ms),
    verified: samples.length,
  };
}

/** Scenarios measured outside the cluster, with ids of their own. */
const IN_PROCESS = [
  { id: 'in_process_single_step', of: 'single_step', label: 'single-step task, in one process (weft run path)' },
  { id: 'in_process_linear', of: 'linear', label: 'linear (native), in one process (weft run path)' },
] as const;
const HISTORY_ID = 'linear_history';

function runtimesFor(scenarios: ScenarioDef[], throughput: boolean): Set<Runtime> {
  const set = new Set<Runtime>(scenarios.map((s) => s.runtime));
  if (throughput) set.add('native');
  return set;
}

async function benchBackend(backend: Backend, opts: BenchOptions, log: Logger, progress: Progress): Promise<{ doc: BenchDocument; dir: string }> {
  const started = Date.now();
  const loadAtStart = Math.round(os.loadavg()[0]! * 100) / 100;
  const { scenarios, throughput, io } = selectScenarios(opts.scenarios?.split(','));
  const runtimes = runtimesFor(scenarios, throughput);
  const workers = Object.fromEntries([...runtimes].map((r) => [r, opts.workersPerRuntime])) as Partial<Record<Runtime, number>>;
  const config = loadConfig();
  const stamp = new Date()
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
  const dir = resolve(opts.out, `${stamp}-${backend}`);
  mkdirSync(dir, { recursive: true });
  // The CSV examples read only their data folder: the workers get this run's folder as theirs (env below).
  const csvText = generateProductsCsv(1000);
  writeFileSync(join(dir, 'products.csv'), csvText);
  const csv = { file: 'products.csv', expected: expectedCsvAggregate(csvText) };

  const doc: BenchDocument = {
    schema: 'weft-bench/1',
    generated_at: new Date().toISOString(),
    backend,
    quick: opts.quick,
    machine: machine(),
    versions: {
      node: process.version,
      postgresql: null,
      rabbitmq: backend === 'rabbitmq' ? await rabbitVersion(config.amqpUrl) : null,
      python: runtimes.has('python') || io ? pythonVersion(config) : null,
      ruby: runtimes.has('ruby') || io ? run('ruby', ['-e', 'print RUBY_VERSION']) : null,
    },
    config: {
      orchestrators: opts.orchestrators,
      workers,
      samples: opts.samples,
      warmup: opts.warmup,
      runs: opts.runs,
      database: config.databaseUrl ? 'url' : 'embedded',
      messaging: backend,
      log_level: config.logLevel ?? 'warn',
      worker_concurrency: opts.concurrency,
      throughput_in_flight: opts.inFlight,
      throughput_seconds: opts.throughputSeconds,
      interleaved: opts.interleave,
      scenarios: [...scenarios.map((s) => s.id), ...(throughput ? [THROUGHPUT_ID] : []), ...(io ? [IO_TIER_ID] : [])],
    },
    git: gitInfo(),
    scenarios: scenarios.map<ScenarioResult>((s) => ({
      id: s.id,
      reference_name: '',
      tier: s.tier,
      label: s.label,
      runtime: s.runtime,
      pattern: s.pattern,
      steps: s.steps,
      sequential_stages: s.sequential_stages,
      runs: [],
    })),
    throughput: [],
    elapsed_s: 0,
  };
  const { REFERENCE } = await import('./reference.js');
  for (const s of doc.scenarios) s.reference_name = REFERENCE[s.id]?.name ?? '';

  const stateDir = join(config.home, 'cluster', `bench-${process.pid}`);
  const database = await benchDatabase(config, backend, log);
  const env = { ...processEnvironment(), WEFT_LOG_LEVEL: config.logLevel ?? 'warn', WEFT_DATABASE_URL: database.url, WEFT_EXAMPLES_DATA_DIR: dir };
  const inProcess = IN_PROCESS.filter((x) => scenarios.some((s) => s.id === x.of));
  const history = opts.historySteps > 0 && scenarios.some((s) => s.id === 'linear');
  const extra = (id: string, of: string, label: string): ScenarioResult => {
    const d = SCENARIOS.find((x) => x.id === of)!;
    return { id, reference_name: '', tier: 1, label, runtime: d.runtime, pattern: d.pattern, steps: d.steps, sequential_stages: d.sequential_stages, runs: [] };
  };
  for (const x of inProcess) doc.scenarios.push(extra(x.id, x.of, x.label));
  if (history)
    doc.scenarios.push(extra(HISTORY_ID, 'linear', `linear (native) after ${opts.historySteps.toLocaleString('en-US')} finished steps in the tables`));
  try {
    for (let runNo = 1; runNo <= opts.runs; runNo++) {
      if (inProcess.length) {
        progress.line(`${backend} run ${runNo}/${opts.runs}: in one process (orchestrator + native worker, no HTTP)…`);
        const measured = await measureInProcess({
          databaseUrl: database.url,
          backend,
          amqpUrl: config.amqpUrl,
          scenarios: inProcess.map((x) => SCENARIOS.find((d) => d.id === x.of)!),
          samples: opts.samples,
          warmup: opts.warmup,
          log,
        });
        for (const x of inProcess) {
          const r = toRunResult(runNo, measured.get(x.of)!);
          doc.scenarios.find((s) => s.id === x.id)!.runs.push(r);
          progress.line(
            `  ${`run ${runNo} · ${x.id}`.padEnd(34)} n=${r.client.n} P50 ${r.client.p50.toFixed(2)} ms  P95 ${r.client.p95.toFixed(2)} ms  ✓ results`,
          );
        }
      }
      if (scenarios.length) {
        progress.line(
          `${backend} run ${runNo}/${opts.runs}: starting ${opts.orchestrators} orchestrator(s) and ${Object.entries(workers)
            .map(([r, n]) => `${n} ${r}`)
            .join(', ')} worker(s)…`,
        );
        const sup = await startCluster(
          { orchestrators: opts.orchestrators, workers, backend, stateDir, env, concurrency: opts.concurrency },
          opts.basePort,
          log,
        );
        try {
          doc.versions.postgresql ??= await postgresVersion(sup.database);
          const urls = sup.orchestratorUrls();
          const results = await measureScenarios(scenarios, urls, opts, runNo, csv, progress);
          for (const s of doc.scenarios) if (results.has(s.id)) s.runs.push(results.get(s.id)!);
          if (throughput) doc.throughput.push(await measureThroughput('cluster', sup, opts.workersPerRuntime, opts, runNo, progress));
          if (history && runNo === 1) {
            progress.line(`${backend} run 1: writing ${opts.historySteps.toLocaleString('en-US')} finished steps into the tables…`);
            const db = await openDatabase({ url: database.url, log, max: 1 });
            try {
              await seedHistory(db, opts.historySteps);
            } finally {
              await db.close();
            }
          }
          if (history) {
            const linear = scenarios.filter((s) => s.id === 'linear');
            const after = await measureScenarios(linear, urls, opts, runNo, csv, progress, HISTORY_ID);
            doc.scenarios.find((s) => s.id === HISTORY_ID)!.runs.push(after.get('linear')!);
          }
        } finally {
          await sup.stop();
        }
      }
      if (throughput) {
        const sup = await startCluster({ orchestrators: 1, workers: { native: 1 }, backend, stateDir, env, concurrency: opts.concurrency }, opts.basePort, log);
        try {
          doc.versions.postgresql ??= await postgresVersion(sup.database);
          doc.throughput.push(await measureThroughput('1+1', sup, 1, opts, runNo, progress));
          doc.throughput.push(await measureThroughput('1+1', sup, 1, opts, runNo, progress, 'single'));
          if (opts.batchTasks > 0) doc.throughput.push(await measureBatchThroughput(sup, opts, runNo, progress));
        } finally {
          await sup.stop();
        }
      }
    }
    if (io) {
      doc.versions.postgresql ??= await postgresVersion(database.url);
      doc.io = await measureIoTier({
        backend,
        rounds: opts.ioRounds,
        tasks: opts.ioTasks,
        basePort: opts.basePort,
        env,
        stateDir,
        log,
        line: (t) => progress.line(t),
      });
    }
  } finally {
    await database.drop();
  }
  doc.elapsed_s = Math.round((Date.now() - started) / 100) / 10;
  doc.machine.load_avg = [loadAtStart, Math.round(os.loadavg()[0]! * 100) / 100];
  writeFileSync(join(dir, 'percentiles.json'), `${JSON.stringify(doc, null, 2)}\n`);
  return { doc, dir };
}

/**
 * `weft bench --profile`: `samples` single-step tasks one after the other in
 * one process, then over REST (1 orchestrator + 1 native worker), each after
 * `warmup` unmeasured ones; prints where the wall time went and writes
 * profile.md and profile.json under --out.
 */
async function runProfile(opts: BenchOptions, log: Logger, progress: Progress): Promise<void> {
  const backend: Backend = opts.backend === 'both' ? 'pg' : opts.backend;
  const config = loadConfig();
  const database = await benchDatabase(config, backend, log);
  const single = SCENARIOS.find((x) => x.id === 'single_step')!;
  const stateDir = join(config.home, 'cluster', `bench-${process.pid}`);
  const env = { ...processEnvironment(), WEFT_LOG_LEVEL: config.logLevel ?? 'warn', WEFT_DATABASE_URL: database.url };
  try {
    progress.line(`profile (${backend}): ${opts.samples} single-step tasks in one process…`);
    const inProcess = (
      await measureInProcess({
        databaseUrl: database.url,
        backend,
        amqpUrl: config.amqpUrl,
        scenarios: [single],
        samples: opts.samples,
        warmup: opts.warmup,
        log,
      })
    ).get(single.id)!;
    progress.line(`profile (${backend}): ${opts.samples} single-step tasks over REST (1 orchestrator + 1 native worker)…`);
    const rest: Array<{ id: string; at: ClientTimes }> = [];
    const sup = await startCluster({ orchestrators: 1, workers: { native: 1 }, backend, stateDir, env, concurrency: opts.concurrency }, opts.basePort, log);
    try {
      const base = sup.orchestratorUrls()[0]!;
      for (let i = 0; i < opts.warmup + opts.samples; i++) {
        const ended = await createAndWait(base, { namespace: single.namespace, name: single.name, context: contextFor(single) }, single.timeoutMs, single.id);
        const problem = verifyOutcome(single, ended.view);
        if (problem) throw new BenchFailure(`profile: task ${ended.view.id} has a wrong result: ${problem}`);
        if (i >= opts.warmup) rest.push({ id: ended.view.id, at: ended.at });
      }
    } finally {
      await sup.stop();
    }
    const columns = [
      { label: 'in one process', samples: await profileSamples(database.url, inProcess) },
      { label: 'over REST', samples: await profileSamples(database.url, rest) },
    ];
    const table = profileTable(columns);
    const dir = resolve(
      opts.out,
      `${new Date()
        .toISOString()
        .replace(/\.\d+Z$/, 'Z')
        .replace(/:/g, '-')}-profile-${backend}`,
    );
    mkdirSync(dir, { recursive: true });
    const md = [
      `# One single-step task, where the time goes (${backend}, ${machine().cpu_model} × ${machine().cores}, load ${os.loadavg()[0]!.toFixed(2)})`,
      '',
      table,
      '',
    ].join('\n');
    writeFileSync(join(dir, 'profile.md'), md);
    writeFileSync(join(dir, 'profile.json'), `${JSON.stringify({ backend, generated_at: new Date().toISOString(), machine: machine(), columns }, null, 2)}\n`);
    progress.line(`\n${table}\n\nwrote ${join(dir, 'profile.md')} and profile.json`);
  } finally {
    await database.drop();
  }
}

export async function runBench(opts: BenchOptions): Promise<number> {
  const log = configuredLogger(loadConfig(), { name: 'weft-bench', quiet: true });
  const progress = new Progress();
  const bridge = latestBridgeResults();
  const docsDir = join(packageRoot(), 'docs');

  if (opts.report?.length) {
    const loaded = opts.report.map((d) => ({ dir: resolve(d), doc: JSON.parse(readFileSync(join(resolve(d), 'percentiles.json'), 'utf8')) as BenchDocument }));
    for (const l of loaded) writeReports([l.doc], { dir: l.dir, file: 'report.md', bridge });
    if (opts.writeDocs)
      writeReports(
        loaded.map((l) => l.doc),
        { dir: docsDir, file: 'benchmarks.md', chartsSubdir: 'benchmarks', bridge },
      );
    progress.line(`regenerated ${loaded.map((l) => join(l.dir, 'report.md')).join(', ')}${opts.writeDocs ? ' and docs/benchmarks.md' : ''}`);
    return 0;
  }

  stopOnSignal(progress);
  if (opts.profile) {
    await runProfile(opts, log, progress);
    return 0;
  }
  const backends: Backend[] = opts.backend === 'both' ? [...BACKENDS] : [opts.backend];
  const done: Array<{ doc: BenchDocument; dir: string }> = [];
  for (const b of backends) {
    const r = await benchBackend(b, opts, log, progress);
    writeReports([r.doc], { dir: r.dir, file: 'report.md', bridge });
    progress.line(`${b}: wrote ${join(r.dir, 'percentiles.json')} and report.md (${r.doc.elapsed_s} s)`);
    done.push(r);
  }
  if (opts.writeDocs) {
    writeReports(
      done.map((d) => d.doc),
      { dir: docsDir, file: 'benchmarks.md', chartsSubdir: 'benchmarks', bridge },
    );
    progress.line(`wrote ${join(docsDir, 'benchmarks.md')}`);
  }
  return 0;
}
