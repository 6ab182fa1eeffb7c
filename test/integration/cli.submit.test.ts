/**
 * `weft tasks submit FILE.jsonl` as a real process: through an orchestrator's
 * POST /v1/tasks/batch (WEFT_ORCHESTRATOR_URL) and on the database directly;
 * per-line answers, exit 1 when a line failed, a replay creating nothing, and
 * a line that is not JSON refused with its number before anything is sent.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { packageRoot } from '../../src/shared/paths.js';
import { weftCommand as weft } from '../support/weft-process.js';

const line = (n: number, key: string) => JSON.stringify({ namespace: 'e2e_single', name: 'one_step', context: { even_number: n }, idempotency_key: key });

describe('weft tasks submit', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  let api: FastifyInstance;
  let url: string;
  const dir = mkdtempSync(join(tmpdir(), 'weft-submit-'));

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend: 'pg', url: tdb.url, namespaces: ['e2e_single'] });
    api = buildApi({ orchestrator: engine.orchestrators[0]!, db: engine.db, bus: new PgMessageBus(engine.db, silentLogger()), log: silentLogger(), ui: false });
    await api.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await api?.close();
    await engine?.stop();
    await tdb?.drop();
  });

  it.each([
    ['through the API', () => ({ WEFT_ORCHESTRATOR_URL: url })],
    ['on the database', () => ({ WEFT_DATABASE_URL: tdb.url })],
  ])('creates one task per line %s, in batches, answering each line; a replay creates nothing', async (how, env) => {
    const tag = how.replace(/ /g, '_');
    const file = join(dir, `${tag}.jsonl`);
    writeFileSync(file, [line(2, `${tag}-a`), '', line(4, `${tag}-b`), '{"namespace": "e2e_single", "name": "nope"}', line(6, `${tag}-c`)].join('\n'));
    const first = await weft(['tasks', 'submit', file, '--batch-size', '2'], env());
    expect(first.code).toBe(1);
    const rows = first.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    expect(rows.map((r) => [r[0], r[2]])).toEqual([
      ['1', 'created'],
      ['3', 'created'],
      ['4', 'not_found: no template e2e_single/nope is registered; namespace e2e_single has: one_step@1.0.0'],
      ['5', 'created'],
    ]);
    expect(rows[2]![1]).toBe('error');
    expect(first.stderr).toContain('weft: 3 created, 0 existing (idempotency key seen before), 1 failed');
    const ids = [rows[0]![1]!, rows[1]![1]!, rows[3]![1]!];
    for (const id of ids) expect(await engine.orchestrators[0]!.waitForTask(id, 30_000)).toBe(true);
    const { rows: results } = await tdb.db.query<{ result: number }>(
      'SELECT s.result FROM weft.steps s WHERE s.task_id = ANY($1::uuid[]) ORDER BY array_position($1::uuid[], s.task_id)',
      [ids],
    );
    expect(results.map((r) => r.result)).toEqual([4, 16, 36]);

    const again = await weft(['tasks', 'submit', file, '--json'], env());
    expect(again.code).toBe(1);
    const answers = again.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(answers.filter((a) => a.outcome).map((a) => [a.line, a.id, a.outcome])).toEqual([
      [1, ids[0], 'existing'],
      [3, ids[1], 'existing'],
      [5, ids[2], 'existing'],
    ]);
    expect(again.stderr).toContain('weft: 0 created, 3 existing');
  });

  it.each([
    ['through the API', () => ({ WEFT_ORCHESTRATOR_URL: url })],
    ['on the database', () => ({ WEFT_DATABASE_URL: tdb.url })],
  ])('creates lines with run_at or delay as delayed tasks %s, printing when each starts', async (how, env) => {
    const tag = `delayed_${how.replace(/ /g, '_')}`;
    const file = join(dir, `${tag}.jsonl`);
    const far = '2099-06-01T09:00:00.000Z';
    const task = (n: number, extra: object) => JSON.stringify({ namespace: 'e2e_single', name: 'one_step', context: { even_number: n }, ...extra });
    writeFileSync(file, [task(2, { run_at: far }), task(4, { delay: '1s' }), task(6, { delay: 'later' })].join('\n'));
    const res = await weft(['tasks', 'submit', file], env());
    expect(res.code).toBe(1);
    const rows = res.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    expect(rows.map((r) => [r[0], r[2], r[3]])).toEqual([
      ['1', 'created', `starts at ${far}`],
      ['2', 'created', expect.stringMatching(/^starts at \d{4}-/)],
      ['3', 'invalid_input: delay "later" is not a duration; write a number and a unit (ms, s, m, h or d), e.g. 30s, 15m, 12h or 3d (at delay)', undefined],
    ]);
    const [far1, soon] = [rows[0]![1]!, rows[1]![1]!];
    const { rows: tasks } = await tdb.db.query<{ id: string; state: string; run_at: Date }>(
      'SELECT id, state, run_at FROM weft.tasks WHERE id = ANY($1::uuid[]) ORDER BY array_position($1::uuid[], id)',
      [[far1, soon]],
    );
    expect(tasks[0]).toMatchObject({ state: 'pending', run_at: new Date(far) });
    expect(await engine.orchestrators[0]!.waitForTask(soon, 30_000)).toBe(true);
    const { rows: started } = await tdb.db.query<{ at: Date }>(`SELECT at FROM weft.task_transitions WHERE task_id = $1 AND to_state = 'running'`, [soon]);
    expect(started[0]!.at.getTime()).toBeGreaterThanOrEqual(tasks[1]!.run_at.getTime());
  });

  it('refuses a file with a line that is not JSON, naming the line, and creates nothing', async () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, `${line(2, 'bad-a')}\n{"namespace": \n`);
    const before = (await tdb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM weft.tasks')).rows[0]!.n;
    const res = await weft(['tasks', 'submit', file], { WEFT_ORCHESTRATOR_URL: url });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`weft: ${file}:2 is not JSON (`);
    expect((await tdb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM weft.tasks')).rows[0]!.n).toBe(before);
  });
});
