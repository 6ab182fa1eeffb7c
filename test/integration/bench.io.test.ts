import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { freeClusterBase } from '../support/ports.js';
import { runWeft, type WeftRun } from '../support/weft-process.js';
import { IO_VARIANTS } from '../../src/benchmark/io.js';
import type { BenchDocument } from '../../src/benchmark/types.js';

const TASKS = [8, 16];

describe(`weft bench --quick --scenarios io --io-tasks ${TASKS.join(',')}, end to end on the real services`, () => {
  let db: TestDatabase;
  let home: string;
  let out: string;
  let result: WeftRun;
  let doc: BenchDocument;
  let dir: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    home = mkdtempSync(join(tmpdir(), 'weft-bench-io-home-'));
    out = mkdtempSync(join(tmpdir(), 'weft-bench-io-out-'));
    const base = await freeClusterBase({ orchestrators: 1, workers: { native: 1, typescript: 1, python: 1, ruby: 1 } });
    result = await runWeft(
      ['bench', '--quick', '--scenarios', 'io', '--io-tasks', TASKS.join(','), '--backend', 'pg', '--base-port', String(base), '--out', out],
      { WEFT_DATABASE_URL: db.url, WEFT_HOME: home },
      100_000,
    );
    const found = readdirSync(out).filter((d) => d.endsWith('-pg'));
    // A bench that failed leaves no percentiles.json: the tests below then fail showing its exit code and stderr.
    if (found.length === 1 && existsSync(join(out, found[0]!, 'percentiles.json'))) {
      dir = join(out, found[0]!);
      doc = JSON.parse(readFileSync(join(dir, 'percentiles.json'), 'utf8')) as BenchDocument;
    }
  }, 130_000);

  afterAll(async () => {
    await db?.drop();
    rmSync(home, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });

  it('exits 0 and writes percentiles.json with the I/O tier only', () => {
    expect(result.code, result.stderr).toBe(0);
    expect(doc.quick).toBe(true);
    expect(doc.config.scenarios).toEqual(['io']);
    expect(doc.scenarios).toEqual([]);
    expect(doc.throughput).toEqual([]);
    expect(doc.versions.python).toMatch(/^3\./);
    expect(doc.versions.ruby).toMatch(/^3\./);
    expect(doc.io).toMatchObject({ wait_ms: 100, tasks: TASKS, rounds: 1, worker_concurrency: 256 });
  });

  it('has every variant at every task count, one round, with every task verified and every step waiting its 100 ms', () => {
    const io = doc.io!;
    expect(io.results.map((r) => `${r.variant}@${r.tasks}`).sort()).toEqual(TASKS.flatMap((n) => IO_VARIANTS.map((v) => `${v.id}@${n}`)).sort());
    for (const r of io.results) {
      const what = `${r.variant} × ${r.tasks}`;
      expect(r.rounds, what).toHaveLength(1);
      const round = r.rounds[0]!;
      expect(round.verified, what).toBe(r.tasks);
      expect(round.step.n, what).toBe(r.tasks);
      // The step's run time holds the wait (the database's started → finished), whatever the machine's load.
      expect(round.step.min, what).toBeGreaterThanOrEqual(io.wait_ms);
      expect(round.step.min, what).toBeLessThanOrEqual(round.step.p50);
      expect(round.step.p50, what).toBeLessThanOrEqual(round.step.p95);
      expect(round.tasks_per_s, what).toBeCloseTo(r.tasks / (round.wall_ms / 1000), 0);
    }
    expect(result.stderr).toMatch(/round 1 · io +8 × python_async_http .* tasks\/s \(\d+\.\d\d× native\) .* ✓ results/);
  });

  it('writes the I/O section of the report, drops its database and leaves no cluster process behind', async () => {
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).toContain('I/O-bound steps (issue 16)');
    expect(md).toContain('| `ruby_http` ruby: Net::HTTP | 16 |');
    const { rows } = await db.db.query(`SELECT datname FROM pg_database WHERE datname = $1`, [`weft_bench_${result.pid}_pg`]);
    expect(rows).toEqual([]);
    const state = JSON.parse(readFileSync(join(home, 'cluster', readdirSync(join(home, 'cluster'))[0]!, 'state.json'), 'utf8')) as {
      status: string;
      processes: Array<{ name: string; pid: number | null }>;
    };
    expect(state.status).toBe('stopped');
    expect(state.processes.map((p) => p.name).sort()).toEqual(['orchestrator-1', 'worker-native-1', 'worker-python-1', 'worker-ruby-1', 'worker-typescript-1']);
    expect(state.processes.every((p) => p.pid === null)).toBe(true);
  });
});
