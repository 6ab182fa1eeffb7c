/**
 * Bridge micro-benchmark (`npm run bench:bridge`; not a test).
 *
 * Per-call round trip of the `echo` step handler (returns step.context) for:
 *   native      a plain TypeScript function called directly: JSON.parse -> handler -> JSON.stringify
 *   typescript  the same function through bridge.call(): run inline on the JS thread with the
 *               bridge's breaker, counters, histograms and timeout
 *   python      CPython on its own thread through bridge.call() (SDK parses and serialises the
 *               step); the JS thread waits up to syncWaitUs for a short call's result
 *   python-async  the same as an `async def` handler on the interpreter's event loop
 *   ruby        CRuby on its own thread through bridge.call() (same)
 *   X·dispatch  the same through bridge.dispatch(), the always-asynchronous path (typescript:
 *               queue -> native thread -> TSFN -> JS -> native -> resolve), for A/B in one run
 * with a ~200 B and a ~20 KB step payload, sequential (1 in flight, each call
 * timed) and pipelined (256 in flight, spread over the runtime's `--threads`
 * handler threads, 32 by default as in a worker). Then RSS before/after
 * `--rss-calls` pipelined 200 B calls per runtime.
 *
 * Then the cold-call table, which models a step boundary: one 200 B call,
 * then an idle gap (`--gaps`, ms) in which the event loop sleeps and the
 * interpreter thread parks, repeated `--cold-samples` times. The targets'
 * samples are interleaved (one of each per round, in a rotating order), so a
 * burst of background load hits them all alike.
 *
 *   npm run bench:bridge -- [--calls 20000] [--rss-calls 200000] [--only python,python-async,ruby] [--threads 32]
 *                           [--paths call,dispatch] [--cold-samples 400] [--gaps 2,20] [--cold-only]
 *                           [--variants 'python:call:syncWaitUs=100,idleSpinUs=0;ruby:dispatch:idleSpinUs=50']
 *
 * --variants adds rows (sequential and cold tables) that run a target with other runtime
 * settings, interleaved with the rest; each sample applies its variant's settings first.
 *
 * Prints a Markdown table; writes raw JSON to bench/results/bridge-<timestamp>.json.
 * Run through the npm script, which passes --expose-gc so cells start from a
 * collected heap.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

import { openBridge, packageRoot, type BridgeResult, type BridgeRuntime, type RuntimeConfig } from '../src/bridge/index.js';

type Target = 'native' | BridgeRuntime | 'python-async';

/** The runtime a target goes through, and the handler it calls there. */
const route = (t: Exclude<Target, 'native'>): { runtime: BridgeRuntime; handler: string } =>
  t === 'python-async' ? { runtime: 'python', handler: 'overlap.async_context' } : { runtime: t, handler: 'probe.echo' };

/** One row: a target through one path, optionally with other runtime settings. */
interface Variant {
  label: string;
  target: Target;
  path: 'call' | 'dispatch';
  config?: RuntimeConfig;
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return (i >= 0 && process.argv[i + 1]) || dflt;
}
const CALLS = Number(arg('calls', '20000'));
const RSS_CALLS = Number(arg('rss-calls', '200000'));
const WARMUP = Math.min(2000, CALLS);
const PIPELINE = 256;
const THREADS = Number(arg('threads', '32'));
const only = arg('only', 'native,typescript,python,python-async,ruby').split(',') as Target[];
const COLD_SAMPLES = Number(arg('cold-samples', '400'));
const GAPS_MS = arg('gaps', '2,20').split(',').map(Number);
const COLD_ONLY = process.argv.includes('--cold-only');
const PATHS = arg('paths', 'call,dispatch').split(',');

function variants(): Variant[] {
  const out: Variant[] = [];
  for (const t of only) {
    if (t === 'native') out.push({ label: 'native', target: t, path: 'call' });
    else for (const p of PATHS) out.push({ label: p === 'call' ? t : `${t}·dispatch`, target: t, path: p as Variant['path'] });
  }
  for (const spec of arg('variants', '').split(';').filter(Boolean)) {
    const [t, p, kv = ''] = spec.split(':');
    const config = Object.fromEntries(
      kv
        .split(',')
        .filter(Boolean)
        .map((x) => [x.split('=')[0], Number(x.split('=')[1])]),
    ) as RuntimeConfig;
    out.push({ label: `${p === 'call' ? t : `${t}·dispatch`} ${kv}`, target: t as Target, path: p as Variant['path'], config });
  }
  return out;
}

const root = packageRoot();
const fixtures = join(root, 'test', 'native', 'fixtures', 'handlers');
const overlap = join(root, 'test', 'fixtures', 'overlap-handlers');

function step(context: unknown): string {
  return JSON.stringify({ task_id: 't-1', step_id: 's-1', step_name: 'bench', attempt: 1, context, inputs: {}, dependency_results: {}, batch: null });
}
const small = step({ user: 'ada', items: [1, 2, 3], note: 'x'.repeat(60) });
const large = step({
  rows: Array.from({ length: 466 }, (_, i) => ({ id: i, name: `item-${i}`, ok: i % 2 === 0 })),
});
const payloads = { '200B': small, '20KB': large };

const echo = (s: { context: unknown }) => s.context;
const nativeCall = (payload: string) => JSON.stringify(echo(JSON.parse(payload)));

const bridge = openBridge();

/** The runtimes' settings at start, which a variant's own settings are applied over. */
const baseConfig = new Map<BridgeRuntime, RuntimeConfig>();

function unwrap(v: Variant, r: BridgeResult): string {
  if (!r.ok) throw new Error(`${v.label}: ${r.error.class}: ${r.error.message}`);
  return r.json;
}

/** A call of the variant; a synchronous answer of bridge.call() is not awaited. */
function caller(v: Variant): (payload: string) => string | Promise<string> {
  if (v.target === 'native') return (p) => nativeCall(p);
  const { runtime: t, handler } = route(v.target);
  const apply = v.config ? () => bridge.configure(t, { ...baseConfig.get(t), ...v.config }) : () => {};
  const restore = v.config ? () => bridge.configure(t, baseConfig.get(t)!) : () => {};
  if (v.path === 'dispatch') {
    return async (p) => {
      apply();
      try {
        return unwrap(v, await bridge.dispatch(t, { handler, payload: p, timeoutMs: 60_000 }));
      } finally {
        restore();
      }
    };
  }
  return (p) => {
    apply();
    const r = bridge.call(t, { handler, payload: p, timeoutMs: 60_000 });
    if (r instanceof Promise) return r.then((x) => unwrap(v, x)).finally(restore);
    restore();
    return unwrap(v, r);
  };
}

function pct(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

interface Cell {
  target: string;
  payload: string;
  payloadBytes: number;
  mode: 'sequential' | 'pipelined';
  calls: number;
  p50us: number;
  p99us: number;
  meanUs: number;
  callsPerSec: number;
}

async function sequential(v: Variant, name: string, payload: string): Promise<Cell> {
  const call = caller(v);
  for (let i = 0; i < WARMUP; i++) await call(payload);
  const lat = new Float64Array(CALLS);
  const t0 = process.hrtime.bigint();
  if (v.target === 'native') {
    // synchronous baseline: no Promise in the measurement
    for (let i = 0; i < CALLS; i++) {
      const s = process.hrtime.bigint();
      nativeCall(payload);
      lat[i] = Number(process.hrtime.bigint() - s) / 1000;
    }
  } else {
    for (let i = 0; i < CALLS; i++) {
      const s = process.hrtime.bigint();
      const r = call(payload);
      if (typeof r !== 'string') await r;
      lat[i] = Number(process.hrtime.bigint() - s) / 1000;
    }
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const sorted = Array.from(lat).sort((a, b) => a - b);
  return {
    target: v.label,
    payload: name,
    payloadBytes: Buffer.byteLength(payload),
    mode: 'sequential',
    calls: CALLS,
    p50us: pct(sorted, 0.5),
    p99us: pct(sorted, 0.99),
    meanUs: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    callsPerSec: CALLS / wall,
  };
}

async function pipelined(v: Variant, name: string, payload: string, calls = CALLS, collect = true): Promise<Cell> {
  const call = caller(v);
  const lat: number[] = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: PIPELINE }, async () => {
      while (next < calls) {
        next++;
        const s = process.hrtime.bigint();
        await call(payload);
        if (collect) lat.push(Number(process.hrtime.bigint() - s) / 1000);
      }
    }),
  );
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  return {
    target: v.label,
    payload: name,
    payloadBytes: Buffer.byteLength(payload),
    mode: 'pipelined',
    calls,
    p50us: collect ? pct(lat, 0.5) : NaN,
    p99us: collect ? pct(lat, 0.99) : NaN,
    meanUs: (wall * 1e6) / calls, // wall time per call
    callsPerSec: calls / wall,
  };
}

interface ColdCell {
  target: string;
  gapMs: number;
  samples: number;
  p50us: number;
  p99us: number;
  meanUs: number;
  /** Median µs per phase, from the bridge's own histograms around each sample (bridged targets only). */
  phasesP50us?: Record<Phase, number>;
}

const PHASES = ['serialise', 'queueWait', 'run', 'return'] as const;
type Phase = (typeof PHASES)[number];

/** Sum (ns) and count of each phase histogram of a runtime now. */
function phaseTotals(rt: BridgeRuntime): Record<Phase, [number, number]> {
  const h = bridge.stats(rt).histograms;
  return Object.fromEntries(PHASES.map((p) => [p, [h[p].sumNs, h[p].count]])) as Record<Phase, [number, number]>;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One call after each idle gap, per target, interleaved: what a step boundary
 * costs when the interpreter thread has parked since the previous step.
 */
async function cold(vs: Variant[], gaps: number[], samples: number): Promise<ColdCell[]> {
  const calls = vs.map((v) => caller(v));
  const lat = new Map<string, number[]>();
  // per cell and phase: the phase's time in each sample (the histogram's sum moved by that one call)
  const phases = new Map<string, Record<Phase, number[]>>();
  const key = (v: Variant, g: number) => `${v.label}@${g}`;
  for (const g of gaps) {
    for (const v of vs) {
      lat.set(key(v, g), []);
      phases.set(key(v, g), Object.fromEntries(PHASES.map((p) => [p, []])) as unknown as Record<Phase, number[]>);
    }
  }
  for (let i = 0; i < 20; i++) for (const c of calls) await c(small); // warm the code paths
  for (let i = 0; i < samples; i++) {
    for (const g of gaps) {
      for (let k = 0; k < vs.length; k++) {
        const j = (i + k) % vs.length;
        const v = vs[j]!;
        const rt = v.target === 'native' ? undefined : route(v.target).runtime;
        const before = rt && phaseTotals(rt); // before the gap, off the clock
        await pause(g);
        const s = process.hrtime.bigint();
        const r = calls[j]!(small);
        if (typeof r !== 'string') await r;
        lat.get(key(v, g))!.push(Number(process.hrtime.bigint() - s) / 1000);
        if (before) {
          const after = phaseTotals(rt!);
          const acc = phases.get(key(v, g))!;
          for (const p of PHASES) if (after[p][1] - before[p][1] === 1) acc[p].push((after[p][0] - before[p][0]) / 1000);
        }
      }
    }
  }
  const out: ColdCell[] = [];
  for (const g of gaps) {
    for (const v of vs) {
      const xs = lat.get(key(v, g))!.sort((a, b) => a - b);
      const acc = phases.get(key(v, g))!;
      const phasesP50us =
        v.target === 'native'
          ? undefined
          : (Object.fromEntries(
              PHASES.map((p) => [
                p,
                acc[p].length
                  ? pct(
                      acc[p].sort((a, b) => a - b),
                      0.5,
                    )
                  : NaN,
              ]),
            ) as Record<Phase, number>);
      out.push({
        target: v.label,
        gapMs: g,
        samples: xs.length,
        p50us: pct(xs, 0.5),
        p99us: pct(xs, 0.99),
        meanUs: xs.reduce((a, b) => a + b, 0) / xs.length,
        phasesP50us,
      });
    }
  }
  return out;
}

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

async function main() {
  const startedAt = new Date();
  const loadAtStart = os.loadavg();
  for (const rt of ['python', 'ruby'] as const) bridge.configure(rt, { threads: THREADS });
  if (only.includes('python') || only.includes('python-async')) {
    await bridge.load('python', { handlersDir: [join(fixtures, 'python'), join(overlap, 'python')] });
  }
  if (only.includes('ruby')) await bridge.load('ruby', { handlersDir: join(fixtures, 'ruby') });
  if (only.includes('typescript')) await bridge.registerTypescriptHandlers({ 'probe.echo': (s) => s.context });
  for (const rt of ['python', 'ruby', 'typescript'] as const) {
    bridge.configure(rt, { failureThreshold: 1_000_000 });
    const { syncWaitUs, idleSpinUs } = bridge.stats(rt).config;
    baseConfig.set(rt, { syncWaitUs, idleSpinUs });
  }
  const all = variants();
  const plain = all.filter((v) => !v.config);

  // Each cell starts from a collected V8 heap, and all 200 B cells run before
  // the 20 KB ones, so one cell's garbage (V8 GC pauses on the JS thread) does
  // not land in the next cell's tail latencies.
  const settle = async () => {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 50));
  };
  const cells: Cell[] = [];
  for (const [name, payload] of Object.entries(COLD_ONLY ? {} : payloads)) {
    for (const v of all) {
      await settle();
      process.stderr.write(`bench: ${v.label} ${name} sequential...\n`);
      cells.push(await sequential(v, name, payload));
      if (v.config) continue;
      await settle();
      process.stderr.write(`bench: ${v.label} ${name} pipelined...\n`);
      await pipelined(v, name, payload, WARMUP, false);
      cells.push(await pipelined(v, name, payload));
    }
  }

  const rss: Array<{ target: string; calls: number; rssBeforeMb: number; rssAfterMb: number; callsPerSec: number }> = [];
  for (const v of COLD_ONLY ? [] : plain) {
    await settle();
    process.stderr.write(`bench: ${v.label} RSS over ${RSS_CALLS} calls...\n`);
    const before = process.memoryUsage.rss();
    const c = await pipelined(v, '200B', small, RSS_CALLS, false);
    const after = process.memoryUsage.rss();
    rss.push({ target: v.label, calls: RSS_CALLS, rssBeforeMb: before / 2 ** 20, rssAfterMb: after / 2 ** 20, callsPerSec: c.callsPerSec });
  }

  await settle();
  process.stderr.write(`bench: cold calls, ${COLD_SAMPLES} per target and gap (${GAPS_MS.join(', ')} ms)...\n`);
  const coldCells = await cold(all, GAPS_MS, COLD_SAMPLES);

  const machine = {
    date: startedAt.toISOString(),
    git: version('git', ['-C', root, 'rev-parse', '--short', 'HEAD']),
    loadAvgStart: loadAtStart,
    loadAvgEnd: os.loadavg(),
    os: `${os.type()} ${os.release()}`,
    cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
    node: process.version,
    python: version(
      join(process.env.WEFT_PYTHON_HOME || version(process.execPath, [join(root, 'scripts', 'build-native.mjs'), '--flags', 'py-home']), 'bin', 'python3'),
      ['-c', 'import sys; print(sys.version.split()[0])'],
    ),
    ruby: version('ruby', ['-e', 'print RUBY_VERSION']),
    calls: CALLS,
    rssCalls: RSS_CALLS,
    pipeline: PIPELINE,
    threads: THREADS,
    coldSamples: COLD_SAMPLES,
    gapsMs: GAPS_MS,
    runtimeConfig: Object.fromEntries(baseConfig),
  };
  const stats = bridge.stats();

  const f = (n: number) => (Number.isNaN(n) ? '–' : n >= 100 ? n.toFixed(0) : n.toFixed(1));
  const lines = [
    `## Bridge round trip (${machine.date}, ${machine.cpus}, Node ${machine.node}, CPython ${machine.python}, Ruby ${machine.ruby})`,
    '',
    `Handler \`echo\` (returns step.context); ${CALLS} calls per cell after ${WARMUP} warm-up; pipelined = ${PIPELINE} in flight over ${THREADS} handler threads (µs/call = wall time / calls). ` +
      `Runtime settings: ${[...baseConfig].map(([rt, c]) => `${rt} syncWaitUs=${c.syncWaitUs} idleSpinUs=${c.idleSpinUs}`).join(', ')}.`,
    '',
    '| target | payload | mode | p50 µs | p99 µs | µs/call | calls/s |',
    '|---|---|---|---:|---:|---:|---:|',
    ...cells.map(
      (c) => `| ${c.target} | ${c.payload} (${c.payloadBytes} B) | ${c.mode} | ${f(c.p50us)} | ${f(c.p99us)} | ${f(c.meanUs)} | ${Math.round(c.callsPerSec)} |`,
    ),
    '',
    '| target | calls (200 B, pipelined) | RSS before MB | RSS after MB | calls/s |',
    '|---|---:|---:|---:|---:|',
    ...rss.map((r) => `| ${r.target} | ${r.calls} | ${r.rssBeforeMb.toFixed(1)} | ${r.rssAfterMb.toFixed(1)} | ${Math.round(r.callsPerSec)} |`),
    '',
    `Cold calls: one 200 B \`echo\` call after each idle gap, ${COLD_SAMPLES} per cell, targets interleaved; ` +
      `load average (1/5/15 min) ${machine.loadAvgStart.map((x) => x.toFixed(2)).join(' ')} at the start, ` +
      `${machine.loadAvgEnd.map((x) => x.toFixed(2)).join(' ')} at the end. Extra = p50 minus native's p50. ` +
      "The phase columns are medians from the bridge's histograms around each sample: serialise (JS thread: checks, copy, enqueue), " +
      'queue (until the runtime thread started it), run (the handler, with its JSON parse and serialise), ' +
      'return (until the JS thread had the result).',
    '',
    '| target | gap ms | p50 µs | p99 µs | mean µs | extra p50 µs | p50 serialise | queue | run | return |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...coldCells.map((c) => {
      const base = coldCells.find((x) => x.target === 'native' && x.gapMs === c.gapMs);
      const ph = c.phasesP50us ? PHASES.map((p) => f(c.phasesP50us![p])).join(' | ') : '– | – | – | –';
      return `| ${c.target} | ${c.gapMs} | ${f(c.p50us)} | ${f(c.p99us)} | ${f(c.meanUs)} | ${base ? f(c.p50us - base.p50us) : '–'} | ${ph} |`;
    }),
  ];
  process.stdout.write(lines.join('\n') + '\n');

  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bridge-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ machine, cells, rss, cold: coldCells, stats }, null, 2));
  process.stderr.write(`bench: wrote ${file}\n`);
}

await main();
