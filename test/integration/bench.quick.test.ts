import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { freeClusterBase } from '../support/ports.js';
import { runWeft, type WeftRun } from '../support/weft-process.js';
import type { BenchDocument } from '../../src/benchmark/types.js';

describe('weft bench --quick --scenarios linear,csv --history-steps 400, end to end on the real services', () => {
  let db: TestDatabase;
  let home: string;
  let out: string;
  let result: WeftRun;

  beforeAll(async () => {
    db = await createTestDatabase();
    home = mkdtempSync(join(tmpdir(), 'weft-bench-home-'));
    out = mkdtempSync(join(tmpdir(), 'weft-bench-out-'));
    const base = await freeClusterBase({ orchestrators: 2, workers: { native: 2 } });
    result = await runWeft(
      ['bench', '--quick', '--scenarios', 'linear,csv', '--history-steps', '400', '--backend', 'pg', '--base-port', String(base), '--out', out],
      { WEFT_DATABASE_URL: db.url, WEFT_HOME: home },
      90_000,
    );
  }, 120_000);

  afterAll(async () => {
    await db?.drop();
    rmSync(home, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });

  it('exits 0 and writes percentiles.json with 10 verified samples of linear, csv, in one process, and after the history', () => {
    expect(result.code, result.stderr).toBe(0);
    const dirs = readdirSync(out).filter((d) => d.endsWith('-pg'));
    expect(dirs).toHaveLength(1);
    const doc = JSON.parse(readFileSync(join(out, dirs[0]!, 'percentiles.json'), 'utf8')) as BenchDocument;
    expect(doc.schema).toBe('weft-bench/1');
    expect(doc.backend).toBe('pg');
    expect(doc.quick).toBe(true);
    // csv: the CSV example reads the run's products.csv through the workers' WEFT_EXAMPLES_DATA_DIR, and every sample's aggregate is verified.
    expect(doc.scenarios.map((s) => s.id)).toEqual(['linear', 'csv', 'in_process_linear', 'linear_history']);
    for (const s of doc.scenarios) {
      expect(s.runs, s.id).toHaveLength(1);
      expect(s.runs[0]!.verified, s.id).toBe(10);
    }
    const r = doc.scenarios[0]!.runs[0]!;
    expect(r.client.n).toBe(10);
    expect(r.samples_ms).toHaveLength(10);
    expect(r.verified).toBe(10);
    expect(r.client.p50).toBeGreaterThan(0);
    expect(r.client.min).toBeLessThanOrEqual(r.client.p50);
    expect(r.client.p50).toBeLessThanOrEqual(r.client.p95);
    // The server's own created → completed time is part of what the client waited for.
    expect(r.server.p50).toBeGreaterThan(0);
    expect(r.server.p50).toBeLessThanOrEqual(r.client.p50);
    expect(r.phases_p50).toBeDefined();
    expect(doc.versions.postgresql).toMatch(/^\d+/);
    expect(doc.config.database).toBe('url');
    expect(doc.throughput).toEqual([]);
  });

  it('ran against a database of its own, and dropped it', async () => {
    // its own name: another bench may be running beside this one
    const { rows } = await db.db.query(`SELECT datname FROM pg_database WHERE datname = $1`, [`weft_bench_${result.pid}_pg`]);
    expect(rows).toEqual([]);
    expect(result.stderr).toContain('writing 400 finished steps into the tables');
  });

  it('writes the report with the reference column, and leaves no cluster process behind', () => {
    const dir = join(
      out,
      readdirSync(out).find((d) => d.endsWith('-pg'))!,
    );
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).toContain('258.17 / 255.26 ms');
    expect(md).toContain('Quick run');
    expect(readdirSync(dir)).toContain('latency-pg.svg');
    const state = JSON.parse(readFileSync(join(home, 'cluster', readdirSync(join(home, 'cluster'))[0]!, 'state.json'), 'utf8')) as {
      status: string;
      processes: Array<{ pid: number | null }>;
    };
    expect(state.status).toBe('stopped');
    expect(state.processes.every((p) => p.pid === null)).toBe(true);
  });
});
