import { describe, expect, it } from 'vitest';
import { consistencyChecks, ffiOverhead, rowsPerSecond, targets, taskPathTargets, type Figures } from '../../src/benchmark/analysis.js';
import { REFERENCE, TAS71_BASELINE } from '../../src/benchmark/reference.js';
import type { ThroughputResult } from '../../src/benchmark/types.js';
import { summarize } from '../../src/benchmark/stats.js';

/** A figures table from one P50 per scenario and a fixed P95/P50 ratio. */
function single(p50s: Record<string, number>, ratio = 1.06): Figures {
  return Object.fromEntries(Object.entries(p50s).map(([id, v]) => [id, { p50: [v], p95: [v * ratio] }]));
}

/** The seed's TAS-166 figures, both runs (P95 from the published P95/P50 where given, else 1.06). */
const TAS166: Figures = Object.fromEntries(Object.entries(REFERENCE).map(([id, r]) => [id, { p50: [...r.runs], p95: r.runs.map((v) => v * 1.06) }]));

const check = (f: Figures, name: string) => consistencyChecks(f).find((c) => c.name === name)!;

describe("consistency checks fail on the seed's TAS-71 baseline", () => {
  // TAS-71: diamond ≈ linear (127.26 vs 126.66); python diamond 185.85 > linear 183.87; ts 186.53 > 183.31; P95/P50 1.008.
  const tas71 = single(TAS71_BASELINE, 1.008);

  it('diamond < linear: FAIL (127.26 is not below 126.66)', () => {
    const c = check(tas71, 'diamond < linear (native)');
    expect(c.status).toBe('FAIL');
    expect(c.detail).toContain('127.26 ms vs 126.66 ms');
  });

  it('python and typescript diamond < linear: FAIL', () => {
    expect(check(tas71, 'python diamond < python linear').status).toBe('FAIL');
    expect(check(tas71, 'typescript diamond < typescript linear').status).toBe('FAIL');
  });

  it('a check without its data is SKIP, never PASS (TAS-71 has no ruby figures here)', () => {
    expect(check(tas71, 'ruby diamond < ruby linear').status).toBe('SKIP');
    expect(check(tas71, 'linear run-to-run variance').status).toBe('SKIP');
  });
});

describe("consistency checks on the seed's TAS-166 figures", () => {
  it("each language's diamond < its linear passes", () => {
    for (const name of ['python diamond < python linear', 'ruby diamond < ruby linear', 'typescript diamond < typescript linear']) {
      expect(check(TAS166, name).status, name).toBe('PASS');
    }
  });

  it("native diamond < linear is judged per run: the seed's own Run 2 (259.26 vs 255.26 ms) fails it", () => {
    const c = check(TAS166, 'diamond < linear (native)');
    expect(c.status).toBe('FAIL');
    expect(c.detail).toContain('not faster in run 2');
    expect(check({ ...TAS166, diamond: { p50: [199.6], p95: [201] }, linear: { p50: [258.17], p95: [270] } }, 'diamond < linear (native)').status).toBe('PASS');
  });

  it("language spread: within the seed's 3 ms but not within our 0.5 ms, and the threshold is printed", () => {
    const c = check(TAS166, 'language spread (linear P50)');
    expect(c.status).toBe('FAIL');
    expect(c.threshold).toContain('0.5 ms');
    expect(c.detail).toMatch(/spread 1\.\d\d ms/);
  });

  it('linear run-to-run variance −1.1 % passes; a 30 % swing fails', () => {
    expect(check(TAS166, 'linear run-to-run variance').status).toBe('PASS');
    const swing = { ...TAS166, linear: { p50: [199.6, 259.26], p95: [210, 270] } };
    const c = check(swing, 'linear run-to-run variance');
    expect(c.status).toBe('FAIL');
    expect(c.detail).toContain('+29.9 %');
  });

  it('P95/P50 outside the band fails and names the scenario', () => {
    const bad = { ...TAS166, csv: { p50: [10], p95: [25] } };
    const c = check(bad, 'P95/P50 within a plausible band (last run)');
    expect(c.status).toBe('FAIL');
    expect(c.detail).toContain('csv 2.500');
    expect(check(TAS166, 'P95/P50 within a plausible band (last run)').status).toBe('PASS');
  });

  it('diamond in one run only is not enough: every run must be faster', () => {
    const f = { ...TAS166, diamond: { p50: [199.6, 260], p95: [210, 270] } };
    const c = check(f, 'diamond < linear (native)');
    expect(c.status).toBe('FAIL');
    expect(c.detail).toContain('not faster in run 2');
  });
});

describe('FFI overhead and targets', () => {
  it("reproduces the seed's +23 % FFI overhead from its own figures", () => {
    const o = ffiOverhead(TAS166);
    expect(o.map((x) => x.language)).toEqual(['python', 'ruby', 'typescript']);
    for (const x of o) expect(Math.round(x.overhead_pct)).toBe(22 + (x.language === 'ruby' ? 0 : 1));
  });

  const tp = (steps_per_s: number, cpu = 2, wal = 3000, scenario: ThroughputResult['scenario'] = 'linear'): ThroughputResult => ({
    topology: '1+1',
    scenario,
    run: 1,
    orchestrators: 1,
    workers: 1,
    in_flight: 64,
    duration_s: 10,
    tasks: 0,
    steps: 0,
    steps_per_s,
    tasks_per_s: steps_per_s / 4,
    latency: summarize([1]),
    verified: 0,
    cpu_ms_per_step: { total: cpu, orchestrators: cpu / 4, workers: cpu / 4, postgres: cpu / 2 },
    wal_bytes_per_step: wal,
  });

  it('the reference misses every target; good figures meet them', () => {
    const ref = targets(TAS166, 'pg', [tp(100)]);
    expect(ref.filter((t) => t.status === 'MET').map((t) => t.name)).toEqual([]);
    const good = targets(
      single({
        linear: 8,
        diamond: 6,
        single_task: 8,
        concurrent_2x: 9,
        python_linear: 8.1,
        ruby_linear: 8.2,
        typescript_linear: 8.15,
        csv: 15,
        in_process_linear: 3.5,
        single_step: 1.8,
        linear_history: 8.4,
      }),
      'pg',
      [tp(3500, 0.5, 1100), tp(7000, 0.4, 1400, 'batch_single')],
    );
    expect(good.filter((t) => t.status !== 'MET')).toEqual([]);
    expect(good.find((t) => t.name.startsWith('linear-4 P50 after'))!.value).toBe('+5.0 % (8.00 ms → 8.40 ms)');
  });

  it('the linear limit is 10 ms on pg and 15 ms on rabbitmq', () => {
    const f = single({ linear: 12 });
    expect(targets(f, 'pg', [])[0]).toMatchObject({ status: 'MISSED', target: '≤ 10 ms' });
    expect(targets(f, 'rabbitmq', [])[0]).toMatchObject({ status: 'MET', target: '≤ 15 ms' });
  });

  it('history slower by more than 10 %, a step costing more CPU, or too few steps/s are MISSED', () => {
    const t = targets(single({ linear: 8, linear_history: 9 }), 'pg', [tp(2900, 0.7)]);
    expect(t.find((x) => x.name.startsWith('linear-4 P50 after'))!.status).toBe('MISSED');
    expect(t.find((x) => x.name.startsWith('CPU per step'))).toMatchObject({ status: 'MISSED', value: '0.70 ms' });
    expect(t.find((x) => x.name.startsWith('throughput'))!.status).toBe('MISSED');
  });

  it('WAL per step and the batch endpoint are judged on their own rows: a batch row is not a 1+1 chain window', () => {
    const t = targets(single({ linear: 8 }), 'pg', [tp(3500, 0.5, 3025), tp(5000, 0.4, 1100, 'batch_single')]);
    expect(t.find((x) => x.name.startsWith('WAL bytes per step (1+1'))).toMatchObject({ status: 'MISSED', value: '3,025 B' });
    expect(t.find((x) => x.name.startsWith('WAL bytes per step (single'))).toMatchObject({ status: 'MET', value: '1,100 B' });
    expect(t.find((x) => x.name.startsWith('single-step tasks through POST'))).toMatchObject({ status: 'MISSED', value: '5,000 steps/s' });
    expect(t.find((x) => x.name.startsWith('throughput, 1 orchestrator'))).toMatchObject({ status: 'MET', value: '3,500 steps/s' });
  });

  it("issue 20's targets read each 1+1 window on its own: chains, single-step tasks, the batch endpoint", () => {
    const windows = [tp(4600, 0.4, 1300), tp(2400, 0.65, 1400, 'single'), tp(6100, 0.5, 1600, 'batch_single')];
    const t = taskPathTargets(single({ linear: 8, in_process_linear: 7.5, in_process_single_step: 2.4 }), windows);
    const row = (name: string) => t.find((x) => x.name === name);
    expect(row('4-step chains, 1+1 over REST, 64 in flight')).toMatchObject({ status: 'MET', value: '4,600 steps/s' });
    expect(row('single-step tasks, 1+1 over REST, 64 in flight')).toMatchObject({ status: 'MISSED', value: '2,400 steps/s' });
    expect(row('single-step tasks through POST /v1/tasks/batch, 1+1')).toMatchObject({ status: 'MET', value: '6,100 steps/s' });
    expect(row('CPU per step, all processes + PostgreSQL, single-step tasks')).toMatchObject({ status: 'MET', value: '0.65 ms' });
    expect(row('CPU per step, all processes + PostgreSQL, 4-step chains')).toMatchObject({ status: 'MISSED', value: '0.40 ms' });
    expect(row('WAL bytes per step, single-step tasks')).toMatchObject({ status: 'MET', value: '1,400 B' });
    expect(row('WAL bytes per step, single-step tasks through the batch endpoint')).toMatchObject({ status: 'MISSED', value: '1,600 B' });
    expect(row('WAL bytes per step, 4-step chains')).toMatchObject({ status: 'MISSED', value: '1,300 B' });
    expect(row('linear-4 P50, over REST (cluster)')).toMatchObject({ status: 'MET', value: '8.00 ms' });
    expect(row('linear-4 P50, in one process')).toMatchObject({ status: 'MISSED', value: '7.50 ms' });
    expect(row('single-step task P50, in one process')).toMatchObject({ status: 'MET', value: '2.40 ms' });
    expect(row('single-step task P50, over REST (cluster)')!.status).toBe('n/a');
    // A single-step window is not a chain window for issue 8's throughput target either.
    expect(targets(single({ linear: 8 }), 'pg', [tp(2400, 0.65, 1400, 'single')]).find((x) => x.name.startsWith('throughput'))!.status).toBe('n/a');
  });

  it('unmeasured targets are n/a', () => {
    const t = targets(single({ linear: 8 }), 'pg', []);
    expect(t.find((x) => x.name === 'CSV batch, 1000 rows')!.status).toBe('n/a');
    expect(t.find((x) => x.name.startsWith('linear-4 P50, in one process'))!.status).toBe('n/a');
    expect(t.find((x) => x.name.startsWith('throughput'))!.status).toBe('n/a');
  });

  it('batch rows/s = 1000 / P50 seconds (the seed: 357.76 ms → ~2,795 rows/s)', () => {
    expect(Math.round(rowsPerSecond(357.76))).toBe(2795);
    expect(rowsPerSecond(20)).toBe(50_000);
  });
});
