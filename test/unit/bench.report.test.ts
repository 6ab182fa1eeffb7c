import { describe, expect, it } from 'vitest';
import { renderReport, type BridgeResults } from '../../src/bench/report.js';
import { SCENARIOS } from '../../src/bench/scenarios.js';
import { summarize } from '../../src/bench/stats.js';
import type { BenchDocument, RunResult } from '../../src/bench/types.js';

function runOf(run: number, center: number): RunResult {
  const samples = Array.from({ length: 10 }, (_, i) => center * (0.95 + i * 0.01));
  return {
    run,
    client: summarize(samples),
    server: summarize(samples.map((v) => v - 1)),
    samples_ms: samples,
    server_ms: samples.map((v) => v - 1),
    verified: 10,
  };
}

const P50: Record<string, number> = {
  linear: 9,
  diamond: 7,
  conditional: 9.5,
  complex_dag: 12,
  tree: 13,
  single_task: 9.2,
  concurrent_2x: 10.1,
  python_linear: 9.2,
  python_diamond: 7.3,
  ruby_linear: 9.25,
  ruby_diamond: 7.2,
  typescript_linear: 9.1,
  typescript_diamond: 7.1,
  csv: 18,
};

function doc(backend: 'pg' | 'rabbitmq', runs = 2): BenchDocument {
  return {
    schema: 'weft-bench/1',
    generated_at: '2026-11-27T12:00:00.000Z',
    backend,
    quick: false,
    machine: { cpu_model: 'Test CPU', cores: 2, memory_gb: 8, os: 'Linux' },
    versions: { node: 'v20.0.0', postgresql: '18.4', rabbitmq: backend === 'rabbitmq' ? '3.10.8' : null, python: '3.11.7', ruby: '3.1.2' },
    config: {
      orchestrators: 2,
      workers: { native: 2, python: 2, ruby: 2, typescript: 2 },
      samples: 10,
      warmup: 3,
      runs,
      database: 'url',
      messaging: backend,
      log_level: 'warn',
      worker_concurrency: 8,
      throughput_in_flight: 64,
      throughput_seconds: 10,
      scenarios: SCENARIOS.map((s) => s.id),
    },
    git: { commit: 'abcdef0123456789', branch: 'main', dirty: false },
    scenarios: SCENARIOS.map((s) => ({
      id: s.id,
      reference_name: '',
      tier: s.tier,
      label: s.label,
      runtime: s.runtime,
      pattern: s.pattern,
      steps: s.steps,
      sequential_stages: s.sequential_stages,
      runs: Array.from({ length: runs }, (_, i) => ({
        ...runOf(i + 1, P50[s.id]! * (1 + i * 0.01)),
        ...(s.sequential ? { phases_p50: { create_ms: 1, queue_ms: 2, execute_ms: 2, orchestrate_ms: 2, finalize_ms: 1, client_ms: 1 } } : {}),
      })),
    })),
    throughput: [
      {
        topology: '1+1',
        run: 1,
        orchestrators: 1,
        workers: 1,
        in_flight: 64,
        duration_s: 10,
        tasks: 6000,
        steps: 24000,
        steps_per_s: 2400,
        tasks_per_s: 600,
        latency: summarize([20, 30]),
        verified: 6000,
      },
    ],
    elapsed_s: 100,
  };
}

const bridge: BridgeResults = {
  file: 'bench/results/bridge-x.json',
  machine: { date: 'd', cpus: '2 x CPU', python: '3.11.7', ruby: '3.1.2' },
  cells: [{ target: 'python', payload: '200B', mode: 'sequential', calls: 20000, p50us: 26.3, p99us: 71.9, meanUs: 27.5, callsPerSec: 36258 }],
};

describe('renderReport', () => {
  const { markdown, charts } = renderReport([doc('pg')], { bridge, chartPrefix: 'charts/' });

  it("has the seed's tier tables with Run 1 / Run 2 P50, variance and P95/P50", () => {
    for (const h of [
      'Tier 1: core performance',
      'Tier 2: complexity scaling',
      'Tier 3: cluster performance',
      'Tier 4: language comparison',
      'Tier 5: batch processing',
    ])
      expect(markdown).toContain(h);
    expect(markdown).toContain('| Scenario | Run 1 P50 | Run 2 P50 | Variance | P95/P50 (Run 2) |');
  });

  it("puts the reference's figures and the ratio beside ours", () => {
    expect(markdown).toContain('258.17 / 255.26 ms');
    expect(markdown).toContain('199.60 / 259.26 ms');
    expect(markdown).toContain('357.76 / 367.86 ms');
    expect(markdown).toMatch(/\d+\.\d× faster/);
    expect(markdown).toContain('~2,700');
  });

  it('prints the FFI overhead table, the bridge table, the checks and the targets', () => {
    expect(markdown).toContain('FFI overhead (vs native linear)');
    expect(markdown).toContain('+23 %');
    expect(markdown).toContain('| python | 200B | sequential | 20000 | 26.3 µs |');
    expect(markdown).toMatch(/diamond < linear \(native\) \| .* \| \*\*PASS\*\*/);
    expect(markdown).toMatch(/linear-4 P50, cluster \(pg\) \| ≤ 10 ms \| 257 ms \| 9\.\d\d ms \| \*\*MET\*\*/);
    expect(markdown).toContain('2,400 steps/s');
  });

  it('links every chart it returns, and the charts are SVG', () => {
    expect(Object.keys(charts).sort()).toEqual(['distribution-pg.svg', 'latency-pg.svg', 'overhead-pg.svg']);
    for (const [name, svg] of Object.entries(charts)) {
      expect(markdown).toContain(`(charts/${name})`);
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      expect(svg).not.toContain('NaN');
    }
  });

  it('one run: a single Run column, variance —, and the run-to-run check SKIPs', () => {
    const one = renderReport([doc('pg', 1)]).markdown;
    expect(one).toContain('| Scenario | Run 1 P50 | Variance | P95/P50 (Run 1) |');
    expect(one).toMatch(/linear run-to-run variance \| < 5 % \| \*\*SKIP\*\*/);
  });

  it('two backends: one section each, RabbitMQ version in the header', () => {
    const both = renderReport([doc('pg'), doc('rabbitmq')]).markdown;
    expect(both).toContain('## Backend: PostgreSQL queue');
    expect(both).toContain('## Backend: RabbitMQ');
    expect(both).toContain('RabbitMQ 3.10.8');
    expect(both).toContain('linear-4 P50, cluster (rabbitmq) | ≤ 15 ms');
  });

  it('says when the machine was busier than its cores, and explains a negative FFI overhead', () => {
    const d = doc('pg');
    d.machine.load_avg = [5.2, 7.9];
    d.scenarios.find((s) => s.id === 'python_linear')!.runs.forEach((r) => (r.client.p50 = 5));
    const md = renderReport([d]).markdown;
    expect(md).toContain('load average at start → end: pg 5.2 → 7.9');
    expect(md).toContain('other jobs shared the machine');
    expect(md).toContain('A negative overhead means native linear was slower');
    expect(renderReport([doc('pg')]).markdown).not.toContain('A negative overhead');
  });

  it('shows CPU and WAL per step in every throughput window, the batch row apart, and why a CPU figure is missing', () => {
    const d = doc('pg');
    const base = d.throughput[0]!;
    d.throughput = [
      { ...base, scenario: 'linear', cpu_ms_per_step: { total: 0.65, orchestrators: 0.1, workers: 0.2, postgres: 0.35 }, wal_bytes_per_step: 2999 },
      { ...base, topology: 'cluster', orchestrators: 2, workers: 2, cpu_unavailable: 'no process 42 in /proc here', wal_bytes_per_step: 3100 },
      { ...base, scenario: 'batch_single', in_flight: 2, tasks: 10000, steps: 10000, steps_per_s: 6100, wal_bytes_per_step: 1400 },
      { ...base, run: 2 },
    ];
    const md = renderReport([d], { bridge }).markdown;
    expect(md).toContain('| CPU per step (orchestrators + workers + PostgreSQL) | WAL per step |');
    expect(md).toContain('| 0.65 ms (0.10 ms + 0.20 ms + 0.35 ms) | 2,999 B |');
    expect(md).toContain('| cluster: 2 orchestrators + 2 native workers | 1 | 64 |');
    expect(md).toContain('| not measured: no process 42 in /proc here | 3,100 B |');
    expect(md).toContain('| 1 orchestrator + 1 native worker: single-step tasks through `POST /v1/tasks/batch` | 1 | 2 batches |');
    expect(md).toContain('| **6,100** |');
    // An older file's row (neither figure recorded) says so.
    expect(md).toContain('| not measured | not measured |');
  });

  it('a missing bridge file is said, not hidden', () => {
    expect(renderReport([doc('pg')]).markdown).toContain('run `npm run bench:bridge`');
  });
});
