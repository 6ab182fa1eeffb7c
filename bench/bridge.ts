/**
 * Bridge micro-benchmark (`npm run bench:bridge`; not a test).
 *
 * Per-call round trip of the `echo` step handler (returns step.context) for:
 *   native      a plain TypeScript function called directly: JSON.parse -> handler -> JSON.stringify
 *   typescript  the same function through the bridge (queue -> native thread -> TSFN -> JS -> native -> resolve)
 *   python      CPython on its own thread through the bridge (SDK parses and serialises the step)
 *   ruby        CRuby on its own thread through the bridge (same)
 * with a ~200 B and a ~20 KB step payload, sequential (1 in flight, each call
 * timed) and pipelined (256 in flight). Then RSS before/after `--rss-calls`
 * pipelined 200 B calls per runtime.
 *
 * Then the cold-call table, which models a step boundary: one 200 B call,
 * then an idle gap (`--gaps`, ms) in which the event loop sleeps and the
 * interpreter thread parks, repeated `--cold-samples` times. The targets'
 * samples are interleaved (one of each per round, in a rotating order), so a
 * burst of background load hits them all alike.
 *
 *   npm run bench:bridge -- [--calls 20000] [--rss-calls 200000] [--only python,ruby]
 *                           [--cold-samples 400] [--gaps 2,20] [--cold-only]
 *
 * Prints a Markdown table; writes raw JSON to bench/results/bridge-<timestamp>.json.
 * Run through the npm script, which passes --expose-gc so cells start from a
 * collected heap.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

import { openBridge, packageRoot, type BridgeRuntime } from '../src/bridge/index.js';

type Target = 'native' | BridgeRuntime;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}
const CALLS = Number(arg('calls', '20000'));
const RSS_CALLS = Number(arg('rss-calls', '200000'));
const WARMUP = Math.min(2000, CALLS);
const PIPELINE = 256;
const only = arg('only', 'native,typescript,python,ruby').split(',') as Target[];
const COLD_SAMPLES = Number(arg('cold-samples', '400'));
const GAPS_MS = arg('gaps', '2,20').split(',').map(Number);
const COLD_ONLY = process.argv.includes('--cold-only');

const root = packageRoot();
const fixtures = join(root, 'test', 'native', 'fixtures', 'handlers');

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

function caller(t: Target): (payload: string) => Promise<string> {
  if (t === 'native') return async (p) => nativeCall(p);
  return async (p) => {
    const r = await bridge.dispatch(t, { handler: 'probe.echo', payload: p, timeoutMs: 60_000 });
    if (!r.ok) throw new Error(`${t}: ${r.error.class}: ${r.error.message}`);
    return r.json;
  };
}

function pct(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

interface Cell {
  target: Target;
  payload: string;
  payloadBytes: number;
  mode: 'sequential' | 'pipelined';
  calls: number;
  p50us: number;
  p99us: number;
  meanUs: number;
  callsPerSec: number;
}

async function sequential(t: Target, name: string, payload: string): Promise<Cell> {
  const call = caller(t);
  for (let i = 0; i < WARMUP; i++) await call(payload);
  const lat = new Float64Array(CALLS);
  const t0 = process.hrtime.bigint();
  if (t === 'native') {
    // synchronous baseline: no Promise in the measurement
    for (let i = 0; i < CALLS; i++) {
      const s = process.hrtime.bigint();
      nativeCall(payload);
      lat[i] = Number(process.hrtime.bigint() - s) / 1000;
    }
  } else {
    for (let i = 0; i < CALLS; i++) {
      const s = process.hrtime.bigint();
      await call(payload);
      lat[i] = Number(process.hrtime.bigint() - s) / 1000;
    }
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const sorted = Array.from(lat).sort((a, b) => a - b);
  return {
    target: t,
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

async function pipelined(t: Target, name: string, payload: string, calls = CALLS, collect = true): Promise<Cell> {
  const call = caller(t);
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
    target: t,
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
  target: Target;
  gapMs: number;
  samples: number;
  p50us: number;
  p99us: number;
  meanUs: number;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One call after each idle gap, per target, interleaved: what a step boundary
 * costs when the interpreter thread has parked since the previous step.
 */
async function cold(targets: Target[], gaps: number[], samples: number): Promise<ColdCell[]> {
  const calls = targets.map((t) => caller(t));
  const lat = new Map<string, number[]>();
  const key = (t: Target, g: number) => `${t}@${g}`;
  for (const g of gaps) for (const t of targets) lat.set(key(t, g), []);
  for (let i = 0; i < 20; i++) for (const c of calls) await c(small); // warm the code paths
  for (let i = 0; i < samples; i++) {
    for (const g of gaps) {
      for (let k = 0; k < targets.length; k++) {
        const j = (i + k) % targets.length;
        const t = targets[j];
        await pause(g);
        if (t === 'native') {
          const s = process.hrtime.bigint();
          nativeCall(small);
          lat.get(key(t, g))!.push(Number(process.hrtime.bigint() - s) / 1000);
        } else {
          const s = process.hrtime.bigint();
          await calls[j](small);
          lat.get(key(t, g))!.push(Number(process.hrtime.bigint() - s) / 1000);
        }
      }
    }
  }
  const out: ColdCell[] = [];
  for (const g of gaps) {
    for (const t of targets) {
      const xs = lat.get(key(t, g))!.sort((a, b) => a - b);
      out.push({ target: t, gapMs: g, samples: xs.length, p50us: pct(xs, 0.5), p99us: pct(xs, 0.99), meanUs: xs.reduce((a, b) => a + b, 0) / xs.length });
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
  if (only.includes('python')) await bridge.load('python', { handlersDir: join(fixtures, 'python') });
  if (only.includes('ruby')) await bridge.load('ruby', { handlersDir: join(fixtures, 'ruby') });
  if (only.includes('typescript')) await bridge.registerTypescriptHandlers({ 'probe.echo': (s) => s.context });
  for (const rt of ['python', 'ruby', 'typescript'] as const) bridge.configure(rt, { failureThreshold: 1_000_000 });

  // Each cell starts from a collected V8 heap, and all 200 B cells run before
  // the 20 KB ones, so one cell's garbage (V8 GC pauses on the JS thread) does
  // not land in the next cell's tail latencies.
  const settle = async () => {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 50));
  };
  const cells: Cell[] = [];
  for (const [name, payload] of Object.entries(COLD_ONLY ? {} : payloads)) {
    for (const t of only) {
      await settle();
      process.stderr.write(`bench: ${t} ${name} sequential...\n`);
      cells.push(await sequential(t, name, payload));
      await settle();
      process.stderr.write(`bench: ${t} ${name} pipelined...\n`);
      await pipelined(t, name, payload, WARMUP, false);
      cells.push(await pipelined(t, name, payload));
    }
  }

  const rss: Array<{ target: Target; calls: number; rssBeforeMb: number; rssAfterMb: number; callsPerSec: number }> = [];
  for (const t of COLD_ONLY ? [] : only) {
    await settle();
    process.stderr.write(`bench: ${t} RSS over ${RSS_CALLS} calls...\n`);
    const before = process.memoryUsage.rss();
    const c = await pipelined(t, '200B', small, RSS_CALLS, false);
    const after = process.memoryUsage.rss();
    rss.push({ target: t, calls: RSS_CALLS, rssBeforeMb: before / 2 ** 20, rssAfterMb: after / 2 ** 20, callsPerSec: c.callsPerSec });
  }

  await settle();
  process.stderr.write(`bench: cold calls, ${COLD_SAMPLES} per target and gap (${GAPS_MS.join(', ')} ms)...\n`);
  const coldCells = await cold(only, GAPS_MS, COLD_SAMPLES);

  const machine = {
    date: startedAt.toISOString(),
    git: version('git', ['-C', root, 'rev-parse', '--short', 'HEAD']),
    loadAvgStart: loadAtStart,
    loadAvgEnd: os.loadavg(),
    os: `${os.type()} ${os.release()}`,
    cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
    node: process.version,
    python: version(join(process.env.WEFT_PYTHON_HOME || version(process.execPath, [join(root, 'scripts', 'build-native.mjs'), '--flags', 'py-home']), 'bin', 'python3'), ['-c', 'import sys; print(sys.version.split()[0])']),
    ruby: version('ruby', ['-e', 'print RUBY_VERSION']),
    calls: CALLS,
    rssCalls: RSS_CALLS,
    pipeline: PIPELINE,
    coldSamples: COLD_SAMPLES,
    gapsMs: GAPS_MS,
  };
  const stats = bridge.stats();

  const f = (n: number) => (Number.isNaN(n) ? '–' : n >= 100 ? n.toFixed(0) : n.toFixed(1));
  const lines = [
    `## Bridge round trip (${machine.date}, ${machine.cpus}, Node ${machine.node}, CPython ${machine.python}, Ruby ${machine.ruby})`,
    '',
    `Handler \`echo\` (returns step.context); ${CALLS} calls per cell after ${WARMUP} warm-up; pipelined = ${PIPELINE} in flight (µs/call = wall time / calls).`,
    '',
    '| target | payload | mode | p50 µs | p99 µs | µs/call | calls/s |',
    '|---|---|---|---:|---:|---:|---:|',
    ...cells.map((c) => `| ${c.target} | ${c.payload} (${c.payloadBytes} B) | ${c.mode} | ${f(c.p50us)} | ${f(c.p99us)} | ${f(c.meanUs)} | ${Math.round(c.callsPerSec)} |`),
    '',
    '| target | calls (200 B, pipelined) | RSS before MB | RSS after MB | calls/s |',
    '|---|---:|---:|---:|---:|',
    ...rss.map((r) => `| ${r.target} | ${r.calls} | ${r.rssBeforeMb.toFixed(1)} | ${r.rssAfterMb.toFixed(1)} | ${Math.round(r.callsPerSec)} |`),
    '',
    `Cold calls: one 200 B \`echo\` call after each idle gap, ${COLD_SAMPLES} per cell, targets interleaved; ` +
      `load average (1/5/15 min) ${machine.loadAvgStart.map((x) => x.toFixed(2)).join(' ')} at the start, ` +
      `${machine.loadAvgEnd.map((x) => x.toFixed(2)).join(' ')} at the end. Extra = p50 minus native's p50.`,
    '',
    '| target | gap ms | p50 µs | p99 µs | mean µs | extra p50 µs |',
    '|---|---:|---:|---:|---:|---:|',
    ...coldCells.map((c) => {
      const base = coldCells.find((x) => x.target === 'native' && x.gapMs === c.gapMs);
      return `| ${c.target} | ${c.gapMs} | ${f(c.p50us)} | ${f(c.p99us)} | ${f(c.meanUs)} | ${base ? f(c.p50us - base.p50us) : '–'} |`;
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
