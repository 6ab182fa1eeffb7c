import { describe, expect, it } from 'vitest';
import { PermanentError } from '../../src/worker/sdk.js';
import { IO_VARIANTS, ioContext, ioRows, ioTargets, verifyIoOutcome } from '../../src/benchmark/io.js';
import { renderReport } from '../../src/benchmark/report.js';
import { selectScenarios } from '../../src/benchmark/scenarios.js';
import { summarize } from '../../src/benchmark/stats.js';
import type { BenchDocument, IoResult, IoSection } from '../../src/benchmark/types.js';
import { integerList } from '../../src/cli/options.js';
import { benchTarget } from '../../bench/io/handlers/typescript/bench-io.js';

/** tasks/s of each variant per round; 20 step run times from 100 to 100 + 1.9 × `over` ms (P50 100 + 0.95 × over, P95 100 + 1.805 × over). */
function result(variant: string, tasks: number, perRound: number[], over: number): IoResult {
  const v = IO_VARIANTS.find((x) => x.id === variant)!;
  const steps = Array.from({ length: 20 }, (_, i) => 100 + over * (i / 10));
  return {
    variant,
    label: v.label,
    kind: v.kind,
    runtime: v.runtime,
    tasks,
    rounds: perRound.map((tps, i) => ({ round: i + 1, wall_ms: (tasks / tps) * 1000, tasks_per_s: tps, step: summarize(steps), verified: tasks })),
  };
}

function section(): IoSection {
  return {
    wait_ms: 100,
    tasks: [32, 256],
    rounds: 3,
    worker_concurrency: 256,
    results: [
      result('native_sleep', 32, [300, 200, 250], 2),
      result('python_sleep', 32, [150, 190, 240], 4),
      result('python_async_sleep', 32, [291, 196, 247], 1),
      result('ruby_sleep', 32, [30, 20, 25], 2),
      result('native_sleep', 256, [1000, 1000, 1000], 10),
      result('python_async_sleep', 256, [950, 900, 980], 10),
      result('native_http', 32, [280, 280, 280], 3),
      result('ruby_http', 32, [140, 140, 140], 3),
    ],
  };
}

function doc(io?: IoSection): BenchDocument {
  return {
    schema: 'weft-bench/1',
    generated_at: '2026-12-07T12:00:00.000Z',
    backend: 'pg',
    quick: false,
    machine: { cpu_model: 'Test CPU', cores: 2, memory_gb: 8, os: 'Linux' },
    versions: { node: 'v20.0.0', postgresql: '18.4', rabbitmq: null, python: '3.11.7', ruby: '3.1.2' },
    config: {
      orchestrators: 2,
      workers: {},
      samples: 10,
      warmup: 3,
      runs: 1,
      database: 'url',
      messaging: 'pg',
      log_level: 'warn',
      worker_concurrency: 32,
      throughput_in_flight: 64,
      throughput_seconds: 10,
      scenarios: io ? ['io'] : [],
    },
    git: { commit: 'abcdef0123456789', branch: 'main', dirty: false },
    scenarios: [],
    throughput: [],
    ...(io ? { io } : {}),
    elapsed_s: 40,
  };
}

describe('ioRows', () => {
  const rows = ioRows(section());
  const row = (variant: string, tasks: number) => rows.find((r) => r.variant === variant && r.tasks === tasks)!;

  it('quotes the median over the rounds of tasks/s and of the step P50 / P95, and P95 − the wait', () => {
    const r = row('python_sleep', 32);
    expect(r.rounds).toBe(3);
    expect(r.tasks_per_s).toBe(190);
    expect(r.step_p50).toBeCloseTo(103.8, 6);
    expect(r.step_p95).toBeCloseTo(107.22, 6);
    expect(r.p95_over_wait).toBeCloseTo(7.22, 6);
  });

  it('divides by native of the same kind and N in the same round, then takes the median of those ratios', () => {
    // python_sleep / native_sleep per round: 0.5, 0.95, 0.96 → 0.95 (the ratio of the medians would be 190/250 = 0.76)
    expect(row('python_sleep', 32).vs_native).toBeCloseTo(0.95, 6);
    expect(row('native_sleep', 32).vs_native).toBe(1);
    expect(row('python_async_sleep', 256).vs_native).toBeCloseTo(0.95, 6);
    expect(row('ruby_http', 32).vs_native).toBeCloseTo(0.5, 6);
  });

  it('has no ratio when native was not measured for that kind and N', () => {
    const io = section();
    io.results = io.results.filter((r) => r.variant !== 'native_http');
    expect(ioRows(io).find((r) => r.variant === 'ruby_http')!.vs_native).toBeUndefined();
  });
});

describe('ioTargets', () => {
  const t = ioTargets(section());
  const target = (name: string) => t.find((x) => x.name === name)!;

  it("judges issue 16's ratios at 32 and 256 tasks and says n/a for what was not measured", () => {
    expect(target('tasks/s ÷ native, 32 × 100 ms sleep (python async def: asyncio.sleep)')).toMatchObject({ value: '0.98×', status: 'MET' });
    expect(target('tasks/s ÷ native, 32 × 100 ms sleep (ruby: sleep)')).toMatchObject({ value: '0.10×', status: 'MISSED' });
    expect(target('tasks/s ÷ native, 256 × 100 ms sleep (ruby: sleep)')).toMatchObject({ value: 'not measured', status: 'n/a' });
  });

  it('judges step P95 − 100 ms at 32 in flight against 5 ms', () => {
    expect(target('step P95 − 100 ms, 32 in flight (python async def: asyncio.sleep)')).toMatchObject({ value: '+1.8 ms', status: 'MET' });
    expect(target('step P95 − 100 ms, 32 in flight (python def: time.sleep)')).toMatchObject({ value: '+7.2 ms', status: 'MISSED' });
    expect(target('step P95 − 100 ms, 32 in flight (typescript (bridge): await setTimeout)').status).toBe('n/a');
  });
});

describe('the I/O section of the report', () => {
  const md = renderReport([doc(section())]).markdown;

  it('has one row per variant and N with tasks/s, vs native, step P50 / P95 and P95 − 100 ms, sleep before http', () => {
    expect(md).toContain('## I/O-bound steps (issue 16)');
    expect(md).toContain('| Variant | N | Tasks/s | vs native | Step P50 | Step P95 | P95 − 100 ms |');
    expect(md).toContain('| `python_sleep` python def: time.sleep | 32 | **190.0** | 0.95× | 103.80 ms | 107.22 ms | +7.22 ms |');
    expect(md).toContain('| `native_sleep` native: await setTimeout | 256 | **1000.0** | 1.00× | 109.50 ms | 118.05 ms | +18.05 ms |');
    const order = [
      '`native_sleep` native: await setTimeout | 32',
      '`ruby_sleep` ruby: sleep | 32',
      '`native_sleep` native: await setTimeout | 256',
      '`native_http` native: fetch | 32',
    ];
    const at = order.map((x) => md.indexOf(x));
    expect(at.every((i) => i > 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  });

  it('says what the figures mean, and how the tier was run in the methodology', () => {
    expect(md).toContain('Tasks/s is N divided by the wall time from the first `POST /v1/tasks` to the last task observed done');
    expect(md).toContain('1.00× means the runtime runs waiting steps as concurrently as native TypeScript');
    expect(md).toContain('Medians over 3 round(s)');
    expect(md).toMatch(/- I\/O-bound steps: .*`--concurrency 256`.*for N in 32, 256/);
    expect(md).toContain('| tasks/s ÷ native, 32 × 100 ms sleep (ruby: sleep) | ≥ 0.90× | 0.10× | **MISSED** |');
  });

  it('a document without the tier (older files) renders without the section', () => {
    const old = renderReport([doc()]).markdown;
    expect(old).not.toContain('I/O-bound');
    expect(old).toContain('Elapsed: 40 s');
  });
});

describe('the tier’s tasks and checks', () => {
  const http = IO_VARIANTS.find((v) => v.id === 'ruby_http')!;
  const sleep = IO_VARIANTS.find((v) => v.id === 'python_async_sleep')!;

  it('gives each task its id, a sleep of the wait or a URL of the test server that carries the id', () => {
    expect(ioContext(sleep, 'r1-7', 'http://127.0.0.1:5000')).toEqual({ id: 'r1-7', ms: 100 });
    expect(ioContext(http, 'r1 7', 'http://127.0.0.1:5000')).toEqual({ id: 'r1 7', url: 'http://127.0.0.1:5000/wait?id=r1%207' });
  });

  it('accepts only the result the context asks for, and says what was found', () => {
    const ctx = { id: 'a', url: 'http://127.0.0.1:5000/wait?id=a' };
    const view = (result: unknown, state = 'complete') => ({ state, steps: [{ name: 'wait', state, result }] });
    expect(verifyIoOutcome(http, view({ id: 'a', status: 200, echo: 'a' }), ctx)).toBeUndefined();
    expect(verifyIoOutcome(http, view({ id: 'a', status: 200, echo: 'b' }), ctx)).toBe(
      'step wait returned {"id":"a","status":200,"echo":"b"}, expected {"id":"a","status":200,"echo":"a"}',
    );
    expect(verifyIoOutcome(sleep, view({ id: 'a', slept_ms: 100 }), { id: 'a', ms: 100 })).toBeUndefined();
    expect(verifyIoOutcome(sleep, view({ id: 'a', slept_ms: 100 }), { id: 'b', ms: 100 })).toMatch(
      /^step wait returned .*, expected \{"id":"b","slept_ms":100\}$/,
    );
    const failed = { state: 'error', steps: [{ name: 'wait', state: 'error', result: null, error: { message: 'context.url is "x"' } }] };
    expect(verifyIoOutcome(http, failed, ctx)).toBe('task ended in state error, expected complete (its step failed: context.url is "x")');
  });

  it('--scenarios io selects the tier alone; the default run includes it after the others', () => {
    expect(selectScenarios(['io'])).toEqual({ scenarios: [], throughput: false, io: true });
    expect(selectScenarios(undefined).io).toBe(true);
    expect(selectScenarios(['linear']).io).toBe(false);
    expect(() => selectScenarios(['oi'])).toThrow(/not a scenario; use any of .*throughput, io$/);
  });

  it('--io-tasks takes a list of whole numbers within the workers’ concurrency', () => {
    const parse = integerList(1, 256);
    expect(parse('8, 16')).toEqual([8, 16]);
    expect(() => parse('8,,16')).toThrow('expected a comma-separated list of whole numbers, e.g. 32,256.');
    expect(() => parse('32,300')).toThrow('expected a whole number from 1 to 256.');
  });
});

describe('the TypeScript http handler fetches only the bench’s test server', () => {
  const origin = 'http://127.0.0.1:4567';

  it('takes the path of a URL on WEFT_BENCH_IO_ORIGIN', () => {
    expect(benchTarget(`${origin}/wait?id=r1-n32-7`, origin)).toEqual({ origin, path: '/wait?id=r1-n32-7' });
  });

  it.each([
    ['another host', 'http://10.0.0.1/wait'],
    ['another port', 'http://127.0.0.1:4568/wait'],
    ['a name for loopback', 'http://localhost:4567/wait'],
    ['a longer port that starts the same', 'http://127.0.0.1:45678/wait'],
    ['another scheme', 'https://127.0.0.1:4567/wait'],
    ['user info that names another host', 'http://127.0.0.1:4567@evil.example/wait'],
    ['a CR LF in the path', `${origin}/wait\r\nHost: evil.example`],
    ['no path', origin],
    ['not a string', 42],
  ])('refuses %s, saying which URL and what it fetches', (_what, url) => {
    const call = () => benchTarget(url, origin);
    expect(call).toThrow(PermanentError);
    expect(call).toThrow(`context.url is ${JSON.stringify(url ?? null)}; the I/O benchmark's handlers fetch only ${origin}/…`);
  });

  it.each([undefined, 'http://10.0.0.1:80', 'http://127.0.0.1'])('refuses everything when WEFT_BENCH_IO_ORIGIN is %s', (o) => {
    expect(() => benchTarget(`${origin}/wait`, o)).toThrow(/^WEFT_BENCH_IO_ORIGIN is .*, expected http:\/\/127\.0\.0\.1:<port>/);
  });
});
