/**
 * The Markdown analysis in the seed's shape, generated from percentiles.json
 * documents (pure: text in, text out). Never hand-edit its output; rerun
 * `weft bench --report <dir> [--write-docs]` instead.
 *
 * @example
 * const { markdown, charts } = renderReport([doc], { bridge, chartPrefix: '' });
 */
import type { BenchDocument, ScenarioResult, ThroughputResult } from './types.js';
import { REFERENCE, REFERENCE_BATCH_ROWS_PER_S, REFERENCE_FFI_OVERHEAD_PCT, referenceP50 } from './reference.js';
import { avgP50, consistencyChecks, ffiOverhead, figuresOf, rowsPerSecond, signedPct, targets, taskPathTargets, LANGUAGES } from './analysis.js';
import { relativeChange } from './stats.js';
import { distributionChart, latencyChart, overheadChart } from './charts.js';
import { IO_VARIANTS, ioRows, ioTargets } from './io.js';

/** `bench/results/bridge-*.json` as `npm run bench:bridge` writes it. */
export interface BridgeResults {
  file: string;
  machine?: Record<string, unknown>;
  cells: Array<{
    target: string;
    payload: string;
    payloadBytes?: number;
    mode: string;
    calls: number;
    p50us: number;
    p99us: number;
    meanUs: number;
    callsPerSec: number;
  }>;
}

export interface RenderOptions {
  bridge?: BridgeResults;
  /** Path prefix of the chart links, relative to the Markdown file (e.g. `benchmarks/`). */
  chartPrefix?: string;
}

export interface RenderedReport {
  markdown: string;
  /** file name → SVG text */
  charts: Record<string, string>;
}

const ms = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '—' : `${v.toFixed(2)} ms`);
const BACKEND_NAMES: Record<string, string> = { pg: 'PostgreSQL queue (`WEFT_MESSAGING=pg`)', rabbitmq: 'RabbitMQ (`WEFT_MESSAGING=rabbitmq`)' };

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function maxRuns(doc: BenchDocument): number {
  return Math.max(1, doc.config.runs, ...doc.scenarios.map((s) => s.runs.length));
}

function variance(s: ScenarioResult): string {
  if (s.runs.length < 2) return '—';
  return signedPct(relativeChange(s.runs[0]!.client.p50, s.runs[1]!.client.p50));
}

function refCells(id: string, ours: number | undefined): string[] {
  const ref = REFERENCE[id];
  if (!ref) return ['—', '—'];
  const avg = referenceP50(id)!;
  return [`${ref.runs[0].toFixed(2)} / ${ref.runs[1].toFixed(2)} ms`, ours ? `${(avg / ours).toFixed(1)}× faster` : '—'];
}

function tierTable(doc: BenchDocument, tier: number): string | undefined {
  const list = doc.scenarios.filter((s) => s.tier === tier && s.runs.length);
  if (!list.length) return undefined;
  const runs = maxRuns(doc);
  const last = (s: ScenarioResult) => s.runs[s.runs.length - 1]!;
  const head = [
    'Scenario',
    ...Array.from({ length: runs }, (_, i) => `Run ${i + 1} P50`),
    'Variance',
    `P95/P50 (Run ${runs})`,
    'P95',
    'Server P50',
    'Reference P50 (Run 1 / Run 2)',
    'vs reference',
  ];
  const rows = list.map((s) => {
    const l = last(s);
    const avg = s.runs.reduce((a, r) => a + r.client.p50, 0) / s.runs.length;
    return [
      `\`${s.id}\` ${s.label}`,
      ...Array.from({ length: runs }, (_, i) => ms(s.runs[i]?.client.p50)),
      variance(s),
      (l.client.p95 / l.client.p50).toFixed(2),
      ms(l.client.p95),
      ms(l.server.p50),
      ...refCells(s.id, avg),
    ];
  });
  return table(head, rows);
}

function observations(doc: BenchDocument): string[] {
  const f = figuresOf(doc);
  const out: string[] = [];
  const lin = avgP50(f, 'linear');
  const dia = avgP50(f, 'diamond');
  if (lin !== undefined && dia !== undefined) {
    out.push(
      lin - dia > 0.1 * lin
        ? `Diamond (3 sequential stages) is ${((1 - dia / lin) * 100).toFixed(0)} % faster than linear (4 stages): the parallel branches run at once.`
        : `Diamond is within 10 % of linear (${ms(dia)} vs ${ms(lin)}): at this scale a stage's cost is dominated by per-task overhead, or the parallel branches contended.`,
    );
    out.push(`Linear: ${ms(lin / 4)} per sequential stage (reference: 64 ms).`);
  }
  const last = (id: string) => doc.scenarios.find((s) => s.id === id)?.runs.at(-1);
  const l = last('linear');
  if (l)
    out.push(
      `Client share of linear (client P50 − server P50): ${ms(l.client.p50 - l.server.p50)} — HTTP create, long-poll wake-up and the JSON of the task view.`,
    );
  return out;
}

function targetsSection(doc: BenchDocument, which: 'issue 8' | 'issue 20' = 'issue 8'): string {
  const t = which === 'issue 8' ? targets(figuresOf(doc), doc.backend, doc.throughput) : taskPathTargets(figuresOf(doc), doc.throughput);
  return table(
    ['Target', 'Goal', 'Reference', 'weft', 'Status'],
    t.map((x) => [x.name, x.target, x.reference, x.value, x.status === 'MET' ? '**MET**' : x.status === 'MISSED' ? '**MISSED**' : 'n/a']),
  );
}

function checksSection(doc: BenchDocument): string {
  return table(
    ['Check', 'Threshold', 'Result', 'Detail'],
    consistencyChecks(figuresOf(doc)).map((c) => [c.name, c.threshold, `**${c.status}**`, c.detail]),
  );
}

function ffiSection(doc: BenchDocument): string | undefined {
  const f = figuresOf(doc);
  const o = ffiOverhead(f);
  if (!o.length) return undefined;
  const runs = maxRuns(doc);
  const rows = o.map((x) => [
    x.language,
    ...Array.from({ length: runs }, (_, i) => ms(x.p50[i])),
    ms(x.native),
    `${x.overhead_ms >= 0 ? '+' : '−'}${Math.abs(x.overhead_ms).toFixed(2)} ms`,
    `**${signedPct(x.overhead_pct)}**`,
    `+${REFERENCE_FFI_OVERHEAD_PCT} % (${REFERENCE[`${x.language}_linear`]!.runs.map((v) => v.toFixed(2)).join(' / ')} ms)`,
  ]);
  return table(
    ['Worker', ...Array.from({ length: runs }, (_, i) => `P50 (Run ${i + 1})`), 'native linear (same runs)', 'Overhead', 'Overhead %', 'Reference'],
    rows,
  );
}

function bridgeSection(bridge: BridgeResults | undefined): string {
  if (!bridge) return '_No `bench/results/bridge-*.json` found; run `npm run bench:bridge`._';
  const rows = bridge.cells
    .filter((c) => c.mode === 'sequential')
    .map((c) => [
      c.target,
      c.payload,
      c.mode,
      String(c.calls),
      `${c.p50us.toFixed(1)} µs`,
      `${c.p99us.toFixed(1)} µs`,
      `${c.meanUs.toFixed(1)} µs`,
      Math.round(c.callsPerSec).toLocaleString('en-US'),
    ]);
  const m = bridge.machine ?? {};
  return [
    `From \`${bridge.file}\` (${String(m.date ?? '')}; ${String(m.cpus ?? '')}; Python ${String(m.python ?? '?')}, Ruby ${String(m.ruby ?? '?')}). One handler call through the bridge, no database or queue; sequential calls (pipelined cells are in the JSON).`,
    '',
    table(['Target', 'Payload', 'Mode', 'Calls', 'P50', 'P99', 'Mean', 'Calls/s'], rows),
  ].join('\n');
}

function batchSection(doc: BenchDocument): string | undefined {
  const s = doc.scenarios.find((x) => x.id === 'csv' && x.runs.length);
  if (!s) return undefined;
  const runs = maxRuns(doc);
  const avg = s.runs.reduce((a, r) => a + r.client.p50, 0) / s.runs.length;
  const rps = rowsPerSecond(avg);
  return [
    tierTable(doc, 5)!,
    '',
    table(
      ['Batch throughput', ...Array.from({ length: runs }, (_, i) => `Run ${i + 1} rows/s`), 'Rows/s (1000 / mean P50)', 'Reference rows/s', 'vs reference'],
      [
        [
          `\`csv\` ${s.label}`,
          ...Array.from({ length: runs }, (_, i) => (s.runs[i] ? Math.round(rowsPerSecond(s.runs[i]!.client.p50)).toLocaleString('en-US') : '—')),
          `**${Math.round(rps).toLocaleString('en-US')}**`,
          `~${REFERENCE_BATCH_ROWS_PER_S.toLocaleString('en-US')} (357.76 / 367.86 ms)`,
          `${(rps / REFERENCE_BATCH_ROWS_PER_S).toFixed(1)}×`,
        ],
      ],
    ),
  ].join('\n');
}

function throughputSection(doc: BenchDocument): string | undefined {
  if (!doc.throughput.length) return undefined;
  return table(
    [
      'Topology',
      'Run',
      'In flight',
      'Window',
      'Tasks',
      'Steps/s',
      'Tasks/s',
      'Task latency P50',
      'P95',
      'CPU per step (orchestrators + workers + PostgreSQL)',
      'WAL per step',
    ],
    doc.throughput.map((t) => [
      throughputLabel(t),
      String(t.run),
      t.scenario === 'batch_single' ? `${t.in_flight} batches` : String(t.in_flight),
      `${t.duration_s} s`,
      String(t.tasks),
      `**${Math.round(t.steps_per_s).toLocaleString('en-US')}**`,
      t.tasks_per_s.toFixed(1),
      `${ms(t.latency.p50)}${t.scenario === 'batch_single' ? ' (server)' : ''}`,
      ms(t.latency.p95),
      t.cpu_ms_per_step
        ? `${ms(t.cpu_ms_per_step.total)} (${ms(t.cpu_ms_per_step.orchestrators)} + ${ms(t.cpu_ms_per_step.workers)} + ${ms(t.cpu_ms_per_step.postgres)})`
        : t.cpu_unavailable
          ? `not measured: ${t.cpu_unavailable}`
          : 'not measured',
      t.wal_bytes_per_step !== undefined ? `${t.wal_bytes_per_step.toLocaleString('en-US')} B` : 'not measured',
    ]),
  );
}

function throughputLabel(t: ThroughputResult): string {
  const where = t.topology === '1+1' ? '1 orchestrator + 1 native worker' : `cluster: ${t.orchestrators} orchestrators + ${t.workers} native workers`;
  if (t.scenario === 'batch_single') return `${where}: single-step tasks through \`POST /v1/tasks/batch\``;
  return t.scenario === 'single' ? `${where}: single-step tasks` : where;
}

const signedMs = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)} ms` : '—');

function ioSection(doc: BenchDocument): string | undefined {
  const io = doc.io;
  if (!io?.results.length) return undefined;
  const order = (variant: string) => IO_VARIANTS.findIndex((v) => v.id === variant);
  const rows = ioRows(io).sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'sleep' ? -1 : 1) || a.tasks - b.tasks || order(a.variant) - order(b.variant));
  const rounds = Math.max(...rows.map((r) => r.rounds));
  const wait = `${io.wait_ms} ms`;
  return [
    `Each row: N tasks created at once, each with one step that waits ${wait} (\`sleep\`: the runtime's own sleep; \`http\`: one GET to a server the bench runs on 127.0.0.1, which answers after ${wait}), run by one worker process per runtime with \`--concurrency ${io.worker_concurrency}\`. Tasks/s is N divided by the wall time from the first \`POST /v1/tasks\` to the last task observed done, so task creation and the long-poll of all N are in it; "vs native" divides it by the native worker's tasks/s for the same N and kind in the same round: 1.00× means the runtime runs waiting steps as concurrently as native TypeScript, 1/N would mean one step at a time. Step P50 / P95 are the step's own run time over the N steps (started → finished in the database: the wait plus the worker's overhead and its result write), and P95 − ${wait} is what the runtime added to the wait at the 95th percentile. Medians over ${rounds} round(s); within a round the variants are interleaved; every task's result was checked.`,
    '',
    table(
      ['Variant', 'N', 'Tasks/s', 'vs native', 'Step P50', 'Step P95', `P95 − ${wait}`],
      rows.map((r) => [
        `\`${r.variant}\` ${r.label}`,
        String(r.tasks),
        `**${r.tasks_per_s.toFixed(1)}**`,
        r.vs_native === undefined ? '—' : `${r.vs_native.toFixed(2)}×`,
        ms(r.step_p50),
        ms(r.step_p95),
        signedMs(r.p95_over_wait),
      ]),
    ),
    '',
    'Targets (issue 16):',
    '',
    table(
      ['Target', 'Goal', 'weft', 'Status'],
      ioTargets(io).map((x) => [x.name, x.target, x.value, x.status === 'MET' ? '**MET**' : x.status === 'MISSED' ? '**MISSED**' : 'n/a']),
    ),
  ].join('\n');
}

function phasesSection(doc: BenchDocument): string | undefined {
  const rows = doc.scenarios
    .map((s) => ({ s, r: s.runs.at(-1) }))
    .filter((x) => x.r?.phases_p50)
    .map(({ s, r }) => {
      const p = r!.phases_p50!;
      return [
        s.id,
        ms(p.create_ms),
        ms(p.queue_ms),
        ms(p.execute_ms),
        ms(p.orchestrate_ms),
        ms(p.finalize_ms),
        ms(p.client_ms),
        ms(p.post_ms),
        ms(r!.client.p50),
        ms((p.queue_ms + p.execute_ms + p.orchestrate_ms) / s.sequential_stages),
      ];
    });
  if (!rows.length) return undefined;
  return [
    "Medians over the last run's samples of each phase, from the step timestamps the long-poll returns (millisecond resolution, so single phases below 1 ms read as 0 or 1). Σ = summed over the 4 steps of the chain.",
    '',
    table(
      [
        'Scenario',
        'create → 1st enqueue',
        'queue Σ (enqueued → started)',
        'execute Σ (started → finished)',
        'orchestrate Σ (finished → next enqueued)',
        'finalise',
        'client − server (HTTP + wake-up)',
        'POST round trip',
        'client P50',
        'per stage (queue + execute + orchestrate) / 4',
      ],
      rows,
    ),
  ].join('\n');
}

function chartsFor(doc: BenchDocument): Record<string, string> {
  const b = doc.backend;
  const rows = doc.scenarios
    .filter((s) => s.runs.length)
    .map((s) => {
      const l = s.runs.at(-1)!;
      return { label: s.id, p50: s.runs.reduce((a, r) => a + r.client.p50, 0) / s.runs.length, p95: l.client.p95, reference: referenceP50(s.id) };
    });
  const out: Record<string, string> = {};
  if (rows.length) out[`latency-${b}.svg`] = latencyChart(rows, `P50 / P95 per scenario vs the reference (${b}, log scale)`);
  const o = ffiOverhead(figuresOf(doc));
  if (o.length)
    out[`overhead-${b}.svg`] = overheadChart(
      o.map((x) => ({ label: x.language, ours_pct: x.overhead_pct, ours_ms: x.overhead_ms, reference_pct: REFERENCE_FFI_OVERHEAD_PCT })),
      `FFI overhead vs native, linear P50 (${b})`,
    );
  const series = ['linear', 'diamond', ...LANGUAGES.map((l) => `${l}_linear`), 'csv']
    .map((id) => doc.scenarios.find((s) => s.id === id && s.runs.length))
    .filter((s): s is ScenarioResult => s !== undefined)
    .map((s) => ({ label: s.id, samples: s.runs.flatMap((r) => r.samples_ms) }));
  if (series.length) out[`distribution-${b}.svg`] = distributionChart(series, `Latency distribution (CDF, all runs, ${b})`);
  return out;
}

function loadNote(docs: BenchDocument[]): string {
  const loads = docs.filter((x) => x.machine.load_avg).map((x) => `${x.backend} ${x.machine.load_avg![0].toFixed(1)} → ${x.machine.load_avg![1].toFixed(1)}`);
  if (!loads.length) return '';
  const busy = docs.some((x) => x.machine.load_avg && Math.max(...x.machine.load_avg) > x.machine.cores);
  return `; 1-min load average at start → end: ${loads.join(', ')}${busy ? ' (**more runnable work than cores: other jobs shared the machine, so absolute figures and run-to-run variance are inflated**)' : ''}`;
}

function header(docs: BenchDocument[]): string[] {
  const d = docs[0]!;
  const c = d.config;
  const workers = Object.entries(c.workers)
    .map(([r, n]) => `${r}×${n}`)
    .join(', ');
  const v = d.versions;
  const rabbit = docs.find((x) => x.versions.rabbitmq)?.versions.rabbitmq;
  const quick = docs.some((x) => x.quick);
  return [
    '# weft end-to-end benchmark results',
    '',
    `<!-- Generated by \`weft bench\` from percentiles.json. Do not edit: regenerate with \`weft bench --report <results dir>... [--write-docs]\`. -->`,
    ...(quick
      ? [
          '',
          `> **Quick run** (\`--quick\`: ${c.samples} samples, ${c.runs} run, ${c.throughput_seconds} s throughput window): indicative only; the full report uses 50 samples × 2 runs.`,
        ]
      : []),
    '',
    `**Generated:** ${d.generated_at}  `,
    `**Commit:** ${d.git.commit?.slice(0, 10) ?? 'unknown'} (branch ${d.git.branch ?? '?'}${d.git.dirty ? ', uncommitted changes in the tree' : ''})  `,
    `**Backends:** ${docs.map((x) => x.backend).join(', ')}  `,
    `**Mode:** local cluster, ${c.orchestrators} orchestrators, workers ${workers} (worker concurrency ${c.worker_concurrency}); database ${c.database === 'embedded' ? 'embedded PostgreSQL' : 'WEFT_DATABASE_URL'}  `,
    `**Runs:** ${c.runs} independent run(s), cluster restarted between runs; **Samples:** ${c.samples} per scenario after ${c.warmup} warm-up tasks  `,
    `**Machine:** ${d.machine.cores} × ${d.machine.cpu_model}, ${d.machine.memory_gb} GB, ${d.machine.os}${loadNote(docs)}  `,
    `**Versions:** Node ${v.node}, PostgreSQL ${v.postgresql ?? '?'}, RabbitMQ ${rabbit ?? 'not used'}, Python ${v.python ?? 'not used'}, Ruby ${v.ruby ?? 'not used'}`,
    '',
    'A sample is the wall time from sending `POST /v1/tasks` to the moment the client observes the end of the task through the long-poll `GET /v1/tasks/:id/wait` (the server answers when the task ends; no sleep loop), over keep-alive HTTP; every sample\'s results are checked. "Server P50" is the server\'s own created → completed time of the same tasks. The reference\'s client slept 50 ms between polls, so its figures are rounded up to the next poll; "vs reference" is the reference\'s mean P50 divided by ours.',
  ];
}

function backendSection(doc: BenchDocument, prefix: string, multi: boolean): string[] {
  const h = multi ? '###' : '##';
  const out: string[] = [];
  if (multi) out.push('', `## Backend: ${BACKEND_NAMES[doc.backend] ?? doc.backend}`);
  out.push('', `${h} Targets (issue 8)`, '', targetsSection(doc));
  out.push('', `${h} Targets (issue 20: a task's start and end)`, '', targetsSection(doc, 'issue 20'));
  out.push('', `${h} Consistency checks (the seed's)`, '', checksSection(doc));
  const tiers: Array<[number, string]> = [
    [1, 'Tier 1: core performance (native)'],
    [2, 'Tier 2: complexity scaling'],
    [3, 'Tier 3: cluster performance'],
    [4, 'Tier 4: language comparison (native measured in the same runs)'],
  ];
  for (const [tier, title] of tiers) {
    const t = tierTable(doc, tier);
    if (!t) continue;
    out.push('', `${h} ${title}`, '');
    if (tier === 4) {
      const native = tierTable(
        { ...doc, scenarios: doc.scenarios.filter((s) => s.id === 'linear' || s.id === 'diamond').map((s) => ({ ...s, tier: 4 as const })) },
        4,
      );
      if (native) out.push('Native, same runs:', '', native, '', 'Through the bridge:', '');
    }
    out.push(t);
    if (tier === 4) {
      const ffi = ffiSection(doc);
      if (ffi) out.push('', `${h}# FFI overhead (vs native linear)`, '', ffi);
      if (ffiOverhead(figuresOf(doc)).some((x) => x.overhead_ms < 0)) {
        out.push(
          '',
          "A negative overhead means native linear was slower than that language in these runs: the run-to-run noise is larger than the bridge's own cost (tens of µs per call, see the bridge table below), so the sign is not meaningful at this noise level.",
        );
      }
    }
    if (tier === 1) {
      const obs = observations(doc);
      if (obs.length) out.push('', '**Observations:**', ...obs.map((o) => `- ${o}`));
    }
  }
  const batch = batchSection(doc);
  if (batch) out.push('', `${h} Tier 5: batch processing`, '', batch);
  const tp = throughputSection(doc);
  if (tp) out.push('', `${h} Throughput (sustained)`, '', tp);
  const io = ioSection(doc);
  if (io) out.push('', `${h} I/O-bound steps (issue 16)`, '', io);
  const ph = phasesSection(doc);
  if (ph) out.push('', `${h} Where the time goes (linear chains)`, '', ph);
  const charts = chartsFor(doc);
  if (Object.keys(charts).length) {
    out.push('', `${h} Charts`, '');
    for (const name of Object.keys(charts)) out.push(`![${name.replace(/\.svg$/, '')}](${prefix}${name})`, '');
  }
  if (out.at(-1) !== '') out.push('');
  out.push(`Elapsed: ${doc.elapsed_s} s for this backend.`);
  return out;
}

function ioMethod(docs: BenchDocument[]): string[] {
  const io = docs.find((d) => d.io)?.io;
  if (!io) return [];
  return [
    `- I/O-bound steps: after the other tiers, a cluster of its own on the same database (1 orchestrator, one worker process per runtime with \`--concurrency ${io.worker_concurrency}\`, the templates and handlers of \`bench/io/\`, not the shipped ones) and an HTTP server on 127.0.0.1 that answers \`GET /wait\` after ${io.wait_ms} ms. A warm-up of every variant at the largest N (not measured), then ${io.rounds} round(s) (\`--io-rounds\`): in each, for N in ${io.tasks.join(', ')} (\`--io-tasks\`), every variant in turn creates N tasks at once. Every result is checked (the id the task sent comes back; for \`http\`, the server must have answered one request per task); the \`http\` handlers fetch only the bench's own server (\`WEFT_BENCH_IO_ORIGIN\`) and refuse any other URL.`,
  ];
}

/** Render the Markdown report and its charts for one or more backend documents. */
export function renderReport(docs: BenchDocument[], opts: RenderOptions = {}): RenderedReport {
  if (!docs.length) throw new Error('renderReport needs at least one percentiles.json document');
  const prefix = opts.chartPrefix ?? '';
  const multi = docs.length > 1;
  const lines = [...header(docs)];
  const charts: Record<string, string> = {};
  for (const d of docs) {
    lines.push(...backendSection(d, prefix, multi));
    Object.assign(charts, chartsFor(d));
  }
  lines.push('', '## Bridge: per-call cost (`npm run bench:bridge`)', '', bridgeSection(opts.bridge));
  lines.push(
    '',
    '## Methodology',
    '',
    `- ${docs[0]!.config.samples} samples per scenario after ${docs[0]!.config.warmup} warm-up tasks; ${docs[0]!.config.runs} run(s) per backend, each on a freshly started cluster (\`weft cluster\`'s supervisor).`,
    "- Percentiles as in the reference's script: sort, k = (n − 1)·p, linear interpolation between neighbours.",
    docs[0]!.config.interleaved
      ? '- Samples are interleaved: warm-up rounds over every scenario, then sample k of every scenario before sample k + 1 of any, so background load that changes during a run lands on all scenarios alike (the reference ran its groups one after the other).'
      : "- Scenarios were measured one after the other (as the reference's Criterion groups were).",
    '- Tier 1/2/4/5 tasks go to the first orchestrator; Tier 3 round-robins single tasks over the orchestrators, and runs one task per orchestrator concurrently (a sample ends when both have ended).',
    `- Throughput: ${docs[0]!.config.throughput_in_flight} linear tasks kept in flight for ${docs[0]!.config.throughput_seconds} s; steps/s = 4 × tasks completed in the window / window. On the 1+1 topology a second window keeps as many single-step tasks in flight the same way (steps/s = tasks completed / window).`,
    "- Batch-submission throughput (when the table has its row): after the 1+1 window, N single-step tasks (`--batch-tasks`, default 10,000) sent through `POST /v1/tasks/batch` in batches of 1,000, two batches in flight; the window runs from the first batch sent to the moment PostgreSQL shows the last task complete (polled every 20 ms); its latency is the server's created → completed time of each task; every result is checked in one query.",
    "- CPU per step: user + system CPU of every orchestrator and worker (by pid) and of every PostgreSQL process (the pids `pg_stat_activity` lists, background processes included, plus the postmaster), read from /proc/<pid>/stat at the window's start and end, divided by the steps completed. The server's processes are counted only when /proc shows them: the probe checks that its own backend's /proc start time matches `pg_stat_activity.backend_start`; a server on another host or in another pid namespace (a container) fails that check and the column says so. WAL per step: the server-wide `pg_current_wal_lsn()` delta over the window divided by the steps (the embedded PostgreSQL serves only the bench; a shared server's other databases would count too).",
    '- Batch throughput (CSV) = 1000 rows / CSV P50.',
    ...ioMethod(docs),
    '- P95/P50 band and language spread thresholds are stated beside each check.',
    '',
    '### Commands used',
    '',
    '```bash',
    'npm run build',
    `npx weft bench --backend ${docs.length > 1 ? 'both' : docs[0]!.backend}${docs[0]!.quick ? ' --quick' : ` --runs ${docs[0]!.config.runs} --samples ${docs[0]!.config.samples}`} --write-docs`,
    '# regenerate this file from the JSON:',
    'npx weft bench --report bench/results/<timestamp>-<backend>... --write-docs',
    '```',
    '',
  );
  return { markdown: lines.join('\n'), charts };
}
