import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Backend, type Engine } from '../support/engine.js';
import { STEP_TRANSITIONS, TASK_TRANSITIONS, type StepState, type TaskState } from '../../src/core/states.js';

describe.each<Backend>(['pg', 'rabbitmq'])('two orchestrators and two workers, 200 concurrent tasks (%s)', (backend) => {
  let tdb: TestDatabase;
  let engine: Engine;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend, url: tdb.url, orchestrators: 2, workers: 2, concurrency: 16, namespaces: ['e2e_linear', 'e2e_diamond'] });
  });
  afterAll(async () => {
    await engine?.stop();
    await tdb?.drop();
  });

  it('completes every task, each step exactly once, with legal histories only', async () => {
    const n = Number(process.env.WEFT_TEST_CONCURRENT_TASKS ?? 200);
    const views = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        i % 2 === 0
          ? engine.run('e2e_linear', 'mathematical_sequence', { even_number: 2 + (i % 50) * 2 }, 120_000)
          : engine.run('e2e_diamond', 'diamond_pattern', { even_number: 6 }, 120_000),
      ),
    );
    expect(views.filter((v) => v.state === 'complete')).toHaveLength(n);
    for (const [i, v] of views.entries()) {
      if (i % 2 === 0) {
        const x = BigInt(2 + (i % 50) * 2);
        expect(v.steps.find((s) => s.name === 'linear_step_4')!.result).toEqual(
          x ** 16n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x ** 16n) : (x ** 16n).toString(),
        );
      } else {
        expect(v.steps.find((s) => s.name === 'diamond_end')!.result).toBe(2821109907456);
      }
    }

    // No step completed (or even claimed) more often than it should have been.
    const { rows: twice } = await engine.db.query(
      `SELECT step_id, count(*) FILTER (WHERE to_state = 'complete') AS completes,
              count(*) FILTER (WHERE to_state = 'running') AS claims
         FROM weft.step_transitions GROUP BY step_id
        HAVING count(*) FILTER (WHERE to_state = 'complete') <> 1 OR count(*) FILTER (WHERE to_state = 'running') <> 1`,
    );
    expect(twice).toEqual([]);

    // Every history is a legal walk: contiguous seq, each move in the table, ending in the row's state.
    const { rows } = await engine.db.query<{ step_id: string; state: StepState; moves: Array<[StepState | null, StepState, number]> }>(
      `SELECT s.id AS step_id, s.state, json_agg(json_build_array(t.from_state, t.to_state, t.seq) ORDER BY t.seq) AS moves
         FROM weft.steps s JOIN weft.step_transitions t ON t.step_id = s.id GROUP BY s.id`,
    );
    expect(rows).toHaveLength((n / 2) * 4 + (n / 2) * 4);
    for (const r of rows) {
      r.moves.forEach(([from, to, seq], i) => {
        expect(seq).toBe(i + 1);
        if (i > 0) {
          expect(from).toBe(r.moves[i - 1]![1]);
          expect(STEP_TRANSITIONS[from!]).toContain(to);
        }
      });
      expect(r.moves.at(-1)![1]).toBe(r.state);
    }
    const { rows: tasks } = await engine.db.query<{ state: TaskState; moves: Array<[TaskState | null, TaskState]> }>(
      `SELECT t.state, json_agg(json_build_array(x.from_state, x.to_state) ORDER BY x.seq) AS moves
         FROM weft.tasks t JOIN weft.task_transitions x ON x.task_id = t.id GROUP BY t.id`,
    );
    expect(tasks).toHaveLength(n);
    for (const t of tasks) {
      expect(t.moves.map((m) => m[1])).toEqual(['pending', 'running', 'complete']);
      for (const [from, to] of t.moves.slice(1)) expect(TASK_TRANSITIONS[from!]).toContain(to);
    }

    // Both orchestrators and both workers took part.
    const { rows: who } = await engine.db.query(
      `SELECT count(DISTINCT process_id) FILTER (WHERE to_state = 'complete') AS orchestrators,
              count(DISTINCT process_id) FILTER (WHERE to_state = 'running') AS workers
         FROM weft.step_transitions`,
    );
    expect(Number(who[0].orchestrators)).toBe(2);
    expect(Number(who[0].workers)).toBe(2);
  });
});
