/**
 * weft bench's window meter (issue 20) against the real PostgreSQL: the WAL
 * a window wrote, and the CPU of the server's backends found through
 * pg_stat_activity and read from /proc (the test server runs on this machine,
 * as the embedded one does).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { meterWindow } from '../../src/bench/server-meter.js';

describe('meterWindow', () => {
  let tdb: TestDatabase;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    await tdb.db.query('CREATE TABLE meter_rows (id int, note text)');
  });
  afterAll(async () => {
    await tdb?.drop();
  });

  it("counts the CPU a held connection's backend spends in the window, beside the bench's own processes", async () => {
    await tdb.db.query('SELECT 1'); // the pool's connection exists before the window opens
    const { result, cost } = await meterWindow(tdb.url, { bench: () => [process.pid] }, () =>
      tdb.db.query<{ s: string }>('SELECT sum(g)::text AS s FROM generate_series(1, 3000000) g'),
    );
    expect(result.rows[0]!.s).toBe('4500001500000');
    expect(cost.cpu_unavailable).toBeUndefined();
    // Summing three million rows takes the backend far more than a few clock ticks of CPU.
    expect(cost.cpu_ms!.postgres).toBeGreaterThan(50);
    expect(Object.keys(cost.cpu_ms!).sort()).toEqual(['bench', 'postgres']);
  });

  it('measures the WAL the server wrote in the window', async () => {
    const { cost } = await meterWindow(tdb.url, {}, () => tdb.db.query("INSERT INTO meter_rows SELECT g, repeat('x', 100) FROM generate_series(1, 10000) g"));
    // 10,000 heap rows of ~130 bytes each are logged in full: well over a megabyte of WAL.
    expect(cost.wal_bytes).toBeGreaterThan(10_000 * 100);
  });
});
