/**
 * History for the "flat as history grows" scenario (issue 8): finished
 * four-step linear tasks written straight into the tables, as many as weft
 * would have left behind after running them (tasks, steps, edges and every
 * transition row, with the transitions the engine writes), so the next
 * samples run against a database of that size.
 */
import type { Database } from '../store/database.js';

/** Tasks per statement: big enough to be quick, small enough for one transaction's memory. */
const BATCH = 25_000;

/**
 * Insert `steps` finished steps (steps / 4 complete linear tasks of
 * e2e_linear/mathematical_sequence@1.0.0, created a day ago, a millisecond
 * apart), VACUUM and ANALYZE the tables, as a server that ran them would have,
 * and CHECKPOINT.
 * Returns the number of rows written per table.
 */
export async function seedHistory(db: Database, steps: number, onProgress?: (done: number) => void): Promise<Record<string, number>> {
  const tasks = Math.max(1, Math.ceil(steps / 4));
  const base = Date.now() - 86_400_000;
  const written: Record<string, number> = { tasks: 0, steps: 0, step_edges: 0, task_transitions: 0, step_transitions: 0 };
  for (let from = 0; from < tasks; from += BATCH) {
    const n = Math.min(BATCH, tasks - from);
    const { rows } = await db.query<Record<string, number>>(SEED_SQL, [base + from, n]);
    for (const [k, v] of Object.entries(rows[0] ?? {})) written[k] = (written[k] ?? 0) + Number(v);
    onProgress?.(Math.min(tasks, from + n) * 4);
  }
  await db.query('VACUUM (ANALYZE) weft.tasks, weft.steps, weft.step_edges, weft.task_transitions, weft.step_transitions');
  // The windows measured next must not pay for this write: without a checkpoint here, the one the
  // write's WAL brings on (and its full-page images) fell inside the next throughput window (31,747
  // WAL bytes per step in it, against 3,058 in the same window of the run that wrote no history).
  await db.query('CHECKPOINT').catch(() => undefined); // a server that refuses it (no pg_checkpoint role) is measured as it is
  return written;
}

// $1: the first task's creation time (ms since the epoch), $2: how many tasks.
// Task ids are UUIDv7 of their creation time (as weft makes them); step ids are random.
const SEED_SQL = `
  WITH t AS (
    SELECT g, to_timestamp(($1::bigint + g) / 1000.0) AS at,
           (lpad(to_hex($1::bigint + g), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid AS id, h
      FROM generate_series(0, $2::int - 1) AS g, LATERAL (SELECT md5(g::text || random()::text) AS h) AS x),
  s AS (
    SELECT t.id AS task_id, t.at, i, md5(t.h || i)::uuid AS id, md5(t.h || (i - 1))::uuid AS parent
      FROM t, generate_series(1, 4) AS i),
  ins_tasks AS (
    INSERT INTO weft.tasks (id, namespace, name, version, state, seq, context, created_at, updated_at, completed_at, open_steps)
    SELECT id, 'e2e_linear', 'mathematical_sequence', '1.0.0', 'complete', 3, '{"even_number": 6}'::jsonb,
           at, at + interval '8 ms', at + interval '8 ms', 0 FROM t
    RETURNING 1),
  ins_steps AS (
    INSERT INTO weft.steps (id, task_id, name, template_step, type, runtime, handler, queue, state, seq, attempts, max_attempts,
                            timeout_ms, pending_parents, result, worker_id, created_at, enqueued_at, started_at, finished_at, updated_at)
    SELECT id, task_id, 'linear_step_' || i, 'linear_step_' || i, 'standard', 'native', 'linear.square', 'step.e2e_linear.native',
           'complete', CASE WHEN i = 1 THEN 4 ELSE 3 END, 1, 3, 30000, 0, to_jsonb((6::numeric) ^ (2 ^ i)), 'seeded-worker',
           at, at + make_interval(secs => (i - 1) * 0.002), at + make_interval(secs => (i - 1) * 0.002),
           at + make_interval(secs => i * 0.002), at + make_interval(secs => i * 0.002)
      FROM s
    RETURNING 1),
  ins_edges AS (
    INSERT INTO weft.step_edges (task_id, from_step, to_step) SELECT task_id, parent, id FROM s WHERE i > 1 RETURNING 1),
  ins_task_transitions AS (
    INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, at, process_id)
    SELECT id, k, (ARRAY[NULL, 'pending', 'running'])[k], (ARRAY['pending', 'running', 'complete'])[k], at, 'seeded'
      FROM t, generate_series(1, 3) AS k
    RETURNING 1),
  ins_step_transitions AS (
    INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, at, process_id)
    SELECT s.id, k, s.task_id, m.from_state, m.to_state, s.at, 'seeded'
      FROM s, LATERAL (
        SELECT k, from_state, to_state FROM (VALUES
          (1, NULL, 'pending'), (2, 'pending', 'enqueued'), (3, 'enqueued', 'running'), (4, 'running', 'complete')) AS v(k, from_state, to_state)
         WHERE s.i = 1
        UNION ALL
        SELECT k, from_state, to_state FROM (VALUES
          (1, NULL, 'pending'), (2, 'pending', 'running'), (3, 'running', 'complete')) AS v(k, from_state, to_state)
         WHERE s.i > 1) AS m
    RETURNING 1)
  SELECT (SELECT count(*) FROM ins_tasks) AS tasks, (SELECT count(*) FROM ins_steps) AS steps,
         (SELECT count(*) FROM ins_edges) AS step_edges, (SELECT count(*) FROM ins_task_transitions) AS task_transitions,
         (SELECT count(*) FROM ins_step_transitions) AS step_transitions`;
