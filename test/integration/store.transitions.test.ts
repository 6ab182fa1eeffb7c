/**
 * The state machines as the database enforces them (issue 2, "Storage"): the rule tables seeded by
 * migrations/001 equal src/core/states.ts, an illegal transition row is refused by a foreign key, racing
 * writers of the same transition cannot both win, a state change and its transition row are written
 * together, and createTask is all-or-nothing.
 */
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { createTask, getTaskView } from '../../src/store/tasks.js';
import { claimStep, reportStep } from '../../src/store/steps.js';
import {
  closeFailedStep,
  completeStep,
  dispatchDueRetries,
  expireLeases,
  failTask,
  redispatchStale,
  rejectOutcome,
  scheduleRetry,
} from '../../src/store/results.js';
import { registerTemplate } from '../../src/store/templates.js';
import { STEP_TRANSITIONS, TASK_TRANSITIONS } from '../../src/core/states.js';
import { initialSteps } from '../../src/core/plan.js';
import { loadTemplateFile } from '../../src/core/template/load.js';
import type { TemplateDefinition } from '../../src/core/template/types.js';
import { ConflictError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import { packageRoot } from '../../src/shared/paths.js';

const PID = 'test-transitions';
let tdb: TestDatabase;
/** A second pool, as a second weft process would have. */
let other: Database;
let diamond: TemplateDefinition;

beforeAll(async () => {
  tdb = await createTestDatabase();
  other = await openDatabase({ url: tdb.url, log: silentLogger(), max: 10 });
  diamond = await loadTemplateFile(join(packageRoot(), 'templates', 'diamond.yaml'));
  await registerTemplate(tdb.db, diamond);
});
afterAll(async () => {
  await other?.close();
  await tdb?.drop();
});

function newTask(opts: { idempotencyKey?: string; outbox?: boolean } = {}) {
  return createTask(
    tdb.db,
    {
      namespace: diamond.namespace,
      name: diamond.name,
      version: diamond.version,
      context: { even_number: 6 },
      idempotencyKey: opts.idempotencyKey,
      steps: initialSteps(diamond),
    },
    PID,
    opts.outbox ?? false,
  );
}

async function stepIdOf(taskId: string, name: string): Promise<string> {
  const { rows } = await tdb.db.query<{ id: string }>('SELECT id FROM weft.steps WHERE task_id = $1 AND name = $2', [taskId, name]);
  expect(rows).toHaveLength(1);
  return rows[0]!.id;
}

async function stepRow(id: string) {
  const { rows } = await tdb.db.query('SELECT state, seq, attempts, worker_id, pending_parents FROM weft.steps WHERE id = $1', [id]);
  return rows[0] as { state: string; seq: number; attempts: number; worker_id: string | null; pending_parents: number };
}

/** Rows (step or task) whose seq differs from its number of transition rows, or whose last transition is not its state. */
async function auditMismatches(): Promise<unknown[]> {
  const { rows } = await tdb.db.query(`
    SELECT 'step' AS kind, s.id, s.state, s.seq, count(t.seq)::int AS n,
           (SELECT to_state FROM weft.step_transitions x WHERE x.step_id = s.id ORDER BY seq DESC LIMIT 1) AS last,
           max(t.seq) AS max_seq
      FROM weft.steps s LEFT JOIN weft.step_transitions t ON t.step_id = s.id
     GROUP BY s.id
    HAVING s.seq <> count(t.seq) OR s.seq <> coalesce(max(t.seq), 0)
        OR s.state IS DISTINCT FROM (SELECT to_state FROM weft.step_transitions x WHERE x.step_id = s.id ORDER BY seq DESC LIMIT 1)
    UNION ALL
    SELECT 'task', k.id, k.state, k.seq, count(t.seq)::int,
           (SELECT to_state FROM weft.task_transitions x WHERE x.task_id = k.id ORDER BY seq DESC LIMIT 1),
           max(t.seq)
      FROM weft.tasks k LEFT JOIN weft.task_transitions t ON t.task_id = k.id
     GROUP BY k.id
    HAVING k.seq <> count(t.seq) OR k.seq <> coalesce(max(t.seq), 0)
        OR k.state IS DISTINCT FROM (SELECT to_state FROM weft.task_transitions x WHERE x.task_id = k.id ORDER BY seq DESC LIMIT 1)`);
  return rows;
}

async function counts(): Promise<Record<string, number>> {
  const { rows } = await tdb.db.query(`
    SELECT (SELECT count(*) FROM weft.tasks)::int AS tasks, (SELECT count(*) FROM weft.steps)::int AS steps,
           (SELECT count(*) FROM weft.step_edges)::int AS edges,
           (SELECT count(*) FROM weft.task_transitions)::int AS task_transitions,
           (SELECT count(*) FROM weft.step_transitions)::int AS step_transitions,
           (SELECT count(*) FROM weft.queue_messages)::int AS messages`);
  return rows[0];
}

function pairs(table: Readonly<Record<string, readonly string[]>>): string[] {
  return Object.entries(table)
    .flatMap(([from, tos]) => tos.map((to) => `${from} → ${to}`))
    .sort();
}

async function pgError(p: Promise<unknown>): Promise<pg.DatabaseError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(pg.DatabaseError);
  return err as pg.DatabaseError;
}

describe('the rule tables', () => {
  it('weft.step_transition_rules equals STEP_TRANSITIONS exactly', async () => {
    const { rows } = await tdb.db.query<{ p: string }>(`SELECT from_state || ' → ' || to_state AS p FROM weft.step_transition_rules`);
    expect(rows.map((r) => r.p).sort()).toEqual(pairs(STEP_TRANSITIONS));
  });

  it('weft.task_transition_rules equals TASK_TRANSITIONS exactly', async () => {
    const { rows } = await tdb.db.query<{ p: string }>(`SELECT from_state || ' → ' || to_state AS p FROM weft.task_transition_rules`);
    expect(rows.map((r) => r.p).sort()).toEqual(pairs(TASK_TRANSITIONS));
  });
});

describe('an illegal transition is refused by the database', () => {
  it('a step row pending → complete violates the foreign key, and the whole statement (state change included) rolls back', async () => {
    const { taskId } = await newTask();
    const stepId = await stepIdOf(taskId, 'diamond_end'); // pending, seq 1
    const before = await counts();
    const err = await pgError(
      tdb.db.query(
        `WITH moved AS (UPDATE weft.steps SET state = 'complete', seq = seq + 1 WHERE id = $1 RETURNING id, task_id, seq)
         INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id)
         SELECT id, seq, task_id, 'pending', 'complete', $2 FROM moved`,
        [stepId, PID],
      ),
    );
    expect(err.code).toBe('23503');
    expect(err.constraint).toBe('step_transitions_from_state_to_state_fkey');
    expect(err.message).toContain('violates foreign key constraint "step_transitions_from_state_to_state_fkey"');
    expect(await stepRow(stepId)).toMatchObject({ state: 'pending', seq: 1 });
    expect(await counts()).toEqual(before);
  });

  it('one illegal row among legal ones: none of the rows is written', async () => {
    const { taskId } = await newTask();
    const start = await stepIdOf(taskId, 'diamond_start'); // enqueued, seq 2
    const end = await stepIdOf(taskId, 'diamond_end'); // pending, seq 1
    const before = await counts();
    const err = await pgError(
      tdb.db.query(
        `INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id) VALUES
           ($1, 3, $3, 'enqueued', 'running', $4),
           ($2, 2, $3, 'complete', 'pending', $4)`,
        [start, end, taskId, PID],
      ),
    );
    expect(err.code).toBe('23503');
    expect(err.constraint).toBe('step_transitions_from_state_to_state_fkey');
    expect(await counts()).toEqual(before);
  });

  it('a task row complete → running violates the foreign key and nothing changes', async () => {
    const { taskId } = await newTask();
    const before = await counts();
    const err = await pgError(
      tdb.db.query(
        `WITH moved AS (UPDATE weft.tasks SET state = 'complete', seq = seq + 1 WHERE id = $1 RETURNING id, seq)
         INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id)
         SELECT id, seq, 'complete', 'running', $2 FROM moved`,
        [taskId, PID],
      ),
    );
    expect(err.code).toBe('23503');
    expect(err.constraint).toBe('task_transitions_from_state_to_state_fkey');
    expect(err.message).toContain('violates foreign key constraint "task_transitions_from_state_to_state_fkey"');
    const { rows } = await tdb.db.query('SELECT state, seq FROM weft.tasks WHERE id = $1', [taskId]);
    expect(rows[0]).toEqual({ state: 'running', seq: 2 });
    expect(await counts()).toEqual(before);
  });

  it('a first transition row must be NULL → pending with seq 1 (check constraint)', async () => {
    const { taskId } = await newTask();
    const end = await stepIdOf(taskId, 'diamond_end');
    const err = await pgError(
      tdb.db.query(
        `INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id) VALUES ($1, 2, $2, NULL, 'running', $3)`,
        [end, taskId, PID],
      ),
    );
    expect(err.code).toBe('23514');
    expect(err.constraint).toBe('step_transitions_check');
  });
});

describe('two writers racing the same transition: exactly one wins', () => {
  it('two concurrent claimStep calls on one enqueued step, 40 times: one claim each time, one transition row', async () => {
    for (let i = 0; i < 40; i++) {
      const { taskId, dispatched } = await newTask();
      expect(dispatched).toHaveLength(1);
      const stepId = dispatched[0]!.step_id;
      const [a, b] = await Promise.all([
        claimStep(tdb.db, stepId, `worker-a-${i}`, 30_000),
        claimStep(other, stepId, `worker-b-${i}`, 30_000),
      ]);
      const winners = [a, b].filter((c) => c !== undefined);
      expect(winners, `round ${i}`).toHaveLength(1);
      const winner = winners[0]!;
      expect(winner).toMatchObject({ id: stepId, task_id: taskId, name: 'diamond_start', attempt: 1, context: { even_number: 6 } });
      const row = await stepRow(stepId);
      expect(row).toMatchObject({ state: 'running', seq: 3, attempts: 1, worker_id: a ? `worker-a-${i}` : `worker-b-${i}` });
      const { rows } = await tdb.db.query(`SELECT seq, to_state FROM weft.step_transitions WHERE step_id = $1 AND to_state = 'running'`, [stepId]);
      expect(rows).toEqual([{ seq: 3, to_state: 'running' }]);
    }
    expect(await auditMismatches()).toEqual([]);
  });

  it('two concurrent reportStep calls for the same attempt: one is recorded, the other is told it lost', async () => {
    for (let i = 0; i < 20; i++) {
      const { dispatched } = await newTask();
      const stepId = dispatched[0]!.step_id;
      const claimed = await claimStep(tdb.db, stepId, 'w', 30_000);
      expect(claimed).toBeDefined();
      const report = (n: number) => ({ ok: true, result: n, error: null, durationMs: 1 });
      const [a, b] = await Promise.all([
        reportStep(tdb.db, { id: stepId, attempt: 1 }, 'w', report(1), false),
        reportStep(other, { id: stepId, attempt: 1 }, 'w', report(2), false),
      ]);
      expect([a, b].filter(Boolean), `round ${i}`).toHaveLength(1);
      const { rows } = await tdb.db.query('SELECT state, seq, result FROM weft.steps WHERE id = $1', [stepId]);
      expect(rows[0]).toEqual({ state: 'succeeded', seq: 4, result: a ? 1 : 2 });
    }
    expect(await auditMismatches()).toEqual([]);
  });

  it('two concurrent completeStep (succeeded → complete CAS) in two transactions: one completes, children are counted down once', async () => {
    for (let i = 0; i < 20; i++) {
      const { taskId, dispatched } = await newTask();
      const stepId = dispatched[0]!.step_id;
      await claimStep(tdb.db, stepId, 'w', 30_000);
      expect(await reportStep(tdb.db, { id: stepId, attempt: 1 }, 'w', { ok: true, result: 36, error: null, durationMs: 1 }, false)).toBe(true);
      const s = { step_id: stepId, task_id: taskId, namespace: diamond.namespace };
      const [a, b] = await Promise.all([
        tdb.db.transaction((c) => completeStep(c, s, 'orch-a', { outbox: true, dispatch: true })),
        other.transaction((c) => completeStep(c, s, 'orch-b', { outbox: true, dispatch: true })),
      ]);
      expect([a.completed, b.completed].filter(Boolean), `round ${i}`).toHaveLength(1);
      const win = a.completed ? a : b;
      const lose = a.completed ? b : a;
      expect(win.dispatched.map((d) => d.step_id).sort()).toEqual(
        [await stepIdOf(taskId, 'diamond_branch_b'), await stepIdOf(taskId, 'diamond_branch_c')].sort(),
      );
      expect(lose.dispatched).toEqual([]);
      expect(await stepRow(stepId)).toMatchObject({ state: 'complete', seq: 5 });
      for (const name of ['diamond_branch_b', 'diamond_branch_c']) {
        expect(await stepRow(await stepIdOf(taskId, name))).toMatchObject({ state: 'enqueued', seq: 2, pending_parents: 0 });
      }
      expect(await stepRow(await stepIdOf(taskId, 'diamond_end'))).toMatchObject({ state: 'pending', seq: 1, pending_parents: 2 });
      // One message per child: the loser's statement wrote none.
      const { rows } = await tdb.db.query(`SELECT count(*)::int AS n FROM weft.queue_messages WHERE body->>'task_id' = $1`, [taskId]);
      expect(rows[0].n).toBe(2);
    }
    expect(await auditMismatches()).toEqual([]);
  });

  it('two blind writers that read the same seq: the (step_id, seq) primary key lets one commit and refuses the other', async () => {
    const { dispatched, taskId } = await newTask();
    const stepId = dispatched[0]!.step_id;
    const c1 = await tdb.db.acquire();
    const c2 = await other.acquire();
    try {
      await c1.query('BEGIN');
      await c2.query('BEGIN');
      // Both read seq 2 before either writes: neither guards on the state.
      const [r1, r2] = await Promise.all([
        c1.query<{ seq: number }>('SELECT seq FROM weft.steps WHERE id = $1', [stepId]),
        c2.query<{ seq: number }>('SELECT seq FROM weft.steps WHERE id = $1', [stepId]),
      ]);
      expect(r1.rows[0]!.seq).toBe(2);
      expect(r2.rows[0]!.seq).toBe(2);
      const write = (c: pg.PoolClient, seq: number, worker: string) =>
        c.query(
          `WITH t AS (INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id)
                      VALUES ($1, $2, $3, 'enqueued', 'running', $4) RETURNING step_id)
           UPDATE weft.steps SET state = 'running', seq = $2, worker_id = $4 WHERE id IN (SELECT step_id FROM t)`,
          [stepId, seq, taskId, worker],
        );
      await write(c1, r1.rows[0]!.seq + 1, 'blind-1');
      // c2's insert waits for c1's uncommitted key; once c1 commits, it is a duplicate.
      // (pgError attaches its handler now: the rejection may come before COMMIT returns to us.)
      const second = pgError(write(c2, r2.rows[0]!.seq + 1, 'blind-2'));
      await c1.query('COMMIT');
      const err = await second;
      expect(err.code).toBe('23505');
      expect(err.constraint).toBe('step_transitions_pkey');
      expect(err.message).toContain('duplicate key value violates unique constraint "step_transitions_pkey"');
      await c2.query('ROLLBACK');
    } finally {
      c1.release();
      c2.release();
    }
    expect(await stepRow(stepId)).toMatchObject({ state: 'running', seq: 3, worker_id: 'blind-1' });
    expect(await auditMismatches()).toEqual([]);
  });
});

describe('a state change and its transition row are written together', () => {
  it('after createTask, claimStep and reportStep (ok and failed), every step seq equals its transition count and the last to_state equals its state', async () => {
    const tasks = await Promise.all(Array.from({ length: 6 }, () => newTask({ outbox: true })));
    for (const [i, { dispatched }] of tasks.entries()) {
      const stepId = dispatched[0]!.step_id;
      if (i % 3 === 0) continue; // stays enqueued
      expect(await claimStep(tdb.db, stepId, `w${i}`, 30_000)).toBeDefined();
      if (i % 3 === 1) continue; // stays running
      const ok = i % 2 === 0;
      expect(
        await reportStep(
          tdb.db,
          { id: stepId, attempt: 1 },
          `w${i}`,
          { ok, result: ok ? 36 : null, error: ok ? null : { class: 'Boom', message: 'no', permanent: false, kind: 'handler' }, durationMs: 3 },
          true,
        ),
      ).toBe(true);
      // A late report from a worker that does not own the step changes nothing.
      expect(await reportStep(tdb.db, { id: stepId, attempt: 1 }, 'someone-else', { ok: true, result: 1, error: null, durationMs: 1 }, true)).toBe(false);
    }
    expect(await auditMismatches()).toEqual([]);
    const { rows } = await tdb.db.query(
      `SELECT s.state, array_agg(t.from_state || '>' || t.to_state ORDER BY t.seq) FILTER (WHERE t.from_state IS NOT NULL) AS path
         FROM weft.steps s JOIN weft.step_transitions t ON t.step_id = s.id
        WHERE s.task_id = ANY($1::uuid[]) AND s.name = 'diamond_start' GROUP BY s.id, s.state ORDER BY s.state`,
      [tasks.map((t) => t.taskId)],
    );
    const paths = new Map(rows.map((r) => [r.state, r.path]));
    expect(paths.get('enqueued')).toEqual(['pending>enqueued']);
    expect(paths.get('running')).toEqual(['pending>enqueued', 'enqueued>running']);
    expect(paths.get('succeeded')).toEqual(['pending>enqueued', 'enqueued>running', 'running>succeeded']);
    expect(paths.get('failed')).toEqual(['pending>enqueued', 'enqueued>running', 'running>failed']);
    // Each task: NULL → pending → running.
    const { rows: taskRows } = await tdb.db.query(
      `SELECT array_agg(coalesce(from_state, '') || '>' || to_state ORDER BY seq) AS path FROM weft.task_transitions
        WHERE task_id = ANY($1::uuid[]) GROUP BY task_id`,
      [tasks.map((t) => t.taskId)],
    );
    expect(taskRows).toHaveLength(6);
    for (const r of taskRows) expect(r.path).toEqual(['>pending', 'pending>running']);
  });
  it('every other store writer too: redispatch, lease expiry, retry, rejection, failure, completion', async () => {
    const ok = (result: unknown) => ({ ok: true, result, error: null, durationMs: 1 });
    const boom = { ok: false, result: null, error: { class: 'Boom', message: 'no', permanent: true, kind: 'handler' }, durationMs: 1 };
    const inTx = <T>(work: (c: pg.PoolClient) => Promise<T>) => tdb.db.transaction(work);

    // Task 1: redispatched, lease expired, retried, rejected, failed (the task fails, the rest is cancelled).
    const t1 = await newTask({ outbox: true });
    const s1 = t1.dispatched[0]!.step_id;
    expect((await redispatchStale(tdb.db, PID, 0, true)).map((d) => d.step_id)).toContain(s1);
    expect(await claimStep(tdb.db, s1, 'w1', 1)).toBeDefined();
    await until('the 1 ms lease to expire', async () => (await expireLeases(tdb.db, PID)).includes(s1));
    expect(await stepRow(s1)).toMatchObject({ state: 'failed' });
    expect(await inTx((c) => scheduleRetry(c, s1, 0, PID))).toBeInstanceOf(Date);
    await until('the retry to be dispatched', async () => (await dispatchDueRetries(tdb.db, PID, true)).some((d) => d.step_id === s1));
    expect(await claimStep(tdb.db, s1, 'w2', 30_000)).toMatchObject({ attempt: 2 });
    expect(await reportStep(tdb.db, { id: s1, attempt: 2 }, 'w2', ok({ decide: 'nonsense' }), true)).toBe(true);
    await inTx((c) => rejectOutcome(c, s1, { class: 'DecisionError', message: 'bad outcome' }, PID));
    expect(await stepRow(s1)).toMatchObject({ state: 'failed' });
    await inTx((c) => failTask(c, { step_id: s1, task_id: t1.taskId, name: 'diamond_start' }, 'permanent error', PID));
    const v1 = await getTaskView(tdb.db, t1.taskId);
    expect(v1!.state).toBe('error');
    expect(Object.fromEntries(v1!.steps.map((s) => [s.name, s.state]))).toEqual({
      diamond_start: 'error',
      diamond_branch_b: 'cancelled',
      diamond_branch_c: 'cancelled',
      diamond_end: 'cancelled',
    });

    // Task 2: a failed report on a task that has already ended is closed as error.
    const t2 = await newTask();
    const s2 = t2.dispatched[0]!.step_id;
    await claimStep(tdb.db, s2, 'w', 30_000);
    expect(await reportStep(tdb.db, { id: s2, attempt: 1 }, 'w', boom, false)).toBe(true);
    await inTx((c) => closeFailedStep(c, s2, PID));
    expect(await stepRow(s2)).toMatchObject({ state: 'error' });

    // Task 3: every step completes, and with the last one the task.
    const t3 = await newTask({ outbox: true });
    let ready = t3.dispatched.map((d) => d.step_id);
    let taskCompleted = false;
    while (ready.length > 0) {
      const next: string[] = [];
      for (const id of ready) {
        await claimStep(tdb.db, id, 'w', 30_000);
        expect(await reportStep(tdb.db, { id, attempt: 1 }, 'w', ok(1), true)).toBe(true);
        const out = await inTx((c) => completeStep(c, { step_id: id, task_id: t3.taskId, namespace: diamond.namespace }, PID, { outbox: true, dispatch: true }));
        expect(out.completed).toBe(true);
        taskCompleted ||= out.taskCompleted;
        next.push(...out.dispatched.map((d) => d.step_id));
      }
      ready = next;
    }
    expect(taskCompleted).toBe(true);
    const v3 = await getTaskView(tdb.db, t3.taskId);
    expect(v3!.state).toBe('complete');
    expect(v3!.steps.every((s) => s.state === 'complete')).toBe(true);
    expect(v3!.completed_at).toBeInstanceOf(Date);

    expect(await auditMismatches()).toEqual([]);
    const { rows } = await tdb.db.query(
      `SELECT task_id, array_agg(coalesce(from_state, '') || '>' || to_state ORDER BY seq) AS path FROM weft.task_transitions
        WHERE task_id = ANY($1::uuid[]) GROUP BY task_id`,
      [[t1.taskId, t3.taskId]],
    );
    const paths = new Map(rows.map((r) => [r.task_id, r.path]));
    expect(paths.get(t1.taskId)).toEqual(['>pending', 'pending>running', 'running>error']);
    expect(paths.get(t3.taskId)).toEqual(['>pending', 'pending>running', 'running>complete']);
  });

  it('(the audit itself) reports a state changed without its transition row', async () => {
    const { dispatched } = await newTask();
    const stepId = dispatched[0]!.step_id;
    await tdb.db.query(`UPDATE weft.steps SET state = 'cancelled', seq = seq + 1 WHERE id = $1`, [stepId]);
    try {
      expect(await auditMismatches()).toEqual([expect.objectContaining({ kind: 'step', id: stepId, state: 'cancelled', seq: 3, n: 2, last: 'enqueued' })]);
    } finally {
      await tdb.db.query(`DELETE FROM weft.steps WHERE id = $1`, [stepId]);
    }
  });
});

describe('createTask is all-or-nothing', () => {
  it('an idempotency-key conflict is a ConflictError naming the key, and creates nothing', async () => {
    const key = `order-${Date.now()}`;
    const first = await newTask({ idempotencyKey: key, outbox: true });
    const before = await counts();
    const err = await newTask({ idempotencyKey: key, outbox: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).name).toBe('ConflictError');
    expect((err as ConflictError).code).toBe('conflict');
    expect((err as ConflictError).message).toBe(
      `a task with idempotency_key "${key}" already exists; use a new key to create another task, or GET the existing one`,
    );
    expect(await counts()).toEqual(before);
    const { rows } = await tdb.db.query('SELECT id FROM weft.tasks WHERE idempotency_key = $1', [key]);
    expect(rows).toEqual([{ id: first.taskId }]);
  });

  it('two createTask calls racing with one idempotency key: one task, the other call is a ConflictError (10 rounds)', async () => {
    for (let i = 0; i < 10; i++) {
      const key = `race-${i}-${taskIdSuffix()}`;
      const before = await counts();
      const task = (db: Database) =>
        createTask(
          db,
          { namespace: diamond.namespace, name: diamond.name, version: diamond.version, context: {}, idempotencyKey: key, steps: initialSteps(diamond) },
          PID,
          true,
        );
      const outcomes = await Promise.allSettled([task(tdb.db), task(other)]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(won, `round ${i}`).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toBeInstanceOf(ConflictError);
      expect((lost[0]!.reason as Error).message).toContain(`a task with idempotency_key "${key}" already exists`);
      const after = await counts();
      // Exactly one task's worth of rows: 1 task, 4 steps, 4 edges, 2 task transitions, 5 step transitions, 1 message.
      expect({
        tasks: after.tasks! - before.tasks!,
        steps: after.steps! - before.steps!,
        edges: after.edges! - before.edges!,
        task_transitions: after.task_transitions! - before.task_transitions!,
        step_transitions: after.step_transitions! - before.step_transitions!,
        messages: after.messages! - before.messages!,
      }).toEqual({ tasks: 1, steps: 4, edges: 4, task_transitions: 2, step_transitions: 5, messages: 1 });
    }
  });

  it('a step that cannot be written (two planned steps with one name) leaves no task, step, edge, transition or message', async () => {
    const before = await counts();
    const planned = initialSteps(diamond);
    const dup = { ...planned[1]!, parents: [] };
    const err = await pgError(
      createTask(
        tdb.db,
        { namespace: diamond.namespace, name: diamond.name, version: diamond.version, context: {}, steps: [...planned, dup] },
        PID,
        true,
      ),
    );
    expect(err.code).toBe('23505');
    expect(err.message).toContain('duplicate key value violates unique constraint');
    expect(await counts()).toEqual(before);
  });

  it('a task of an unregistered template version is refused by the foreign key and leaves nothing', async () => {
    const before = await counts();
    const err = await pgError(
      createTask(
        tdb.db,
        { namespace: diamond.namespace, name: diamond.name, version: '9.9.9', context: {}, steps: initialSteps(diamond) },
        PID,
        true,
      ),
    );
    expect(err.code).toBe('23503');
    expect(err.constraint).toBe('tasks_namespace_name_version_fkey');
    expect(await counts()).toEqual(before);
  });
});

describe('getTaskView', () => {
  it('returns the task with every step: state, attempts, parents, timings', async () => {
    const { taskId, dispatched } = await newTask({ idempotencyKey: `view-${taskIdSuffix()}` });
    await claimStep(tdb.db, dispatched[0]!.step_id, 'w', 30_000);
    await reportStep(tdb.db, { id: dispatched[0]!.step_id, attempt: 1 }, 'w', { ok: true, result: 36, error: null, durationMs: 2 }, false);
    const view = await getTaskView(tdb.db, taskId);
    expect(view).toBeDefined();
    expect(view).toMatchObject({
      id: taskId,
      namespace: 'e2e_diamond',
      name: 'diamond_pattern',
      version: '1.0.0',
      state: 'running',
      context: { even_number: 6 },
      error: null,
      completed_at: null,
      duration_ms: null,
    });
    expect(view!.idempotency_key).toMatch(/^view-/);
    expect(view!.created_at).toBeInstanceOf(Date);
    expect(view!.updated_at).toBeInstanceOf(Date);
    const byName = Object.fromEntries(view!.steps.map((s) => [s.name, s]));
    expect(Object.keys(byName).sort()).toEqual(['diamond_branch_b', 'diamond_branch_c', 'diamond_end', 'diamond_start']);
    expect(byName.diamond_start).toMatchObject({
      id: dispatched[0]!.step_id,
      template_step: 'diamond_start',
      type: 'standard',
      runtime: 'native',
      handler: 'diamond.start',
      state: 'succeeded',
      attempts: 1,
      parents: [],
      result: 36,
      error: null,
      batch: null,
      run_after: null,
    });
    expect(byName.diamond_start!.max_attempts).toBeGreaterThanOrEqual(1);
    expect(byName.diamond_start!.created_at).toBeInstanceOf(Date);
    expect(byName.diamond_start!.enqueued_at).toBeInstanceOf(Date);
    expect(byName.diamond_start!.started_at).toBeInstanceOf(Date);
    expect(byName.diamond_start!.finished_at).toBeInstanceOf(Date);
    expect(byName.diamond_start!.duration_ms).toBe(
      byName.diamond_start!.finished_at!.getTime() - byName.diamond_start!.started_at!.getTime(),
    );
    expect(byName.diamond_end).toMatchObject({
      state: 'pending',
      attempts: 0,
      parents: ['diamond_branch_b', 'diamond_branch_c'],
      result: null,
      enqueued_at: null,
      started_at: null,
      finished_at: null,
      duration_ms: null,
    });
    expect(byName.diamond_branch_b!.parents).toEqual(['diamond_start']);

    const noContext = await getTaskView(tdb.db, taskId, { withContext: false });
    expect(noContext!.context).toBeNull();
    expect(noContext!.steps).toHaveLength(4);
  });

  it('an unknown task id gives undefined', async () => {
    expect(await getTaskView(tdb.db, '00000000-0000-7000-8000-000000000000')).toBeUndefined();
  });
});

/** Resolves once `what()` is truthy; fails naming `label` after `ms` (for conditions with no event to await). */
async function until(label: string, what: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function taskIdSuffix(): string {
  return Math.random().toString(36).slice(2, 10);
}
