/**
 * The state machines as the database enforces them, and the step boundary's statements (issues 2 and 8):
 * the rule tables equal src/core/states.ts and every pair is checked by the database; racing writers of the
 * same transition cannot both win; a finish is accepted only from the attempt that holds the step; every
 * writer changes a state and writes its transition row together; createTask is all-or-nothing.
 */
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { createTask, getTaskView, type DispatchMode } from '../../src/store/tasks.js';
import { claimIds, claimQueued } from '../../src/store/claim.js';
import { finishSteps, type FinishItem, type FinishOptions } from '../../src/store/finish.js';
import { dispatchDueRetries, redispatchStale, requeueLostSteps } from '../../src/store/dispatch.js';
import { recordProcessExit, registerProcess } from '../../src/store/processes.js';
import { describeExit, type ProcessExit } from '../../src/core/process-exit.js';
import type { ClaimedStep, StatementOutcome } from '../../src/store/events.js';
import { registerTemplate } from '../../src/store/templates.js';
import { STEP_STATES, STEP_TRANSITIONS, TASK_STATES, TASK_TRANSITIONS } from '../../src/core/states.js';
import { initialSteps } from '../../src/core/plan.js';
import { loadTemplateFile } from '../../src/core/template/load.js';
import type { TemplateDefinition } from '../../src/core/template/types.js';
import { ConflictError, NotFoundError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import { packageRoot } from '../../src/shared/paths.js';

const PID = 'test-transitions';
const QUEUE = 'step.e2e_diamond.native';
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

function newTask(opts: { idempotencyKey?: string; mode?: DispatchMode; db?: Database } = {}) {
  return createTask(
    opts.db ?? tdb.db,
    {
      namespace: diamond.namespace,
      name: diamond.name,
      version: diamond.version,
      context: { even_number: 6 },
      idempotencyKey: opts.idempotencyKey,
      steps: initialSteps(diamond),
    },
    PID,
    opts.mode ?? 'wake',
  );
}

async function stepIdOf(taskId: string, name: string): Promise<string> {
  const { rows } = await tdb.db.query<{ id: string }>('SELECT id FROM weft.steps WHERE task_id = $1 AND name = $2', [taskId, name]);
  expect(rows).toHaveLength(1);
  return rows[0]!.id;
}

async function stepRow(id: string) {
  const { rows } = await tdb.db.query('SELECT state, seq, attempts, failures, losses, worker_id, pending_parents FROM weft.steps WHERE id = $1', [id]);
  return rows[0] as { state: string; seq: number; attempts: number; failures: number; losses: number; worker_id: string | null; pending_parents: number };
}

/** Claim one specific step for `worker` (as a broker delivery would). */
async function claim(stepId: string, worker: string, db: Database = tdb.db): Promise<ClaimedStep> {
  const out = await claimIds(db, worker, [stepId]);
  expect(out.claimed.map((c) => c.id)).toEqual([stepId]);
  return out.claimed[0]!;
}

const ok = (s: { id: string; attempt: number }, result: unknown = 36): FinishItem => ({
  id: s.id,
  attempt: s.attempt,
  ok: true,
  resultJson: JSON.stringify(result),
  durationMs: 1,
});
const failed = (s: { id: string; attempt: number }, retryMs: number | null, permanent = false): FinishItem => ({
  id: s.id,
  attempt: s.attempt,
  ok: false,
  error: { language: 'typescript', class: 'Boom', message: 'no', backtrace: [], permanent, kind: 'raised' },
  retryMs,
  reason: retryMs === null ? 'permanent error' : undefined,
  durationMs: 1,
});
/** Options of a worker serving the diamond's queue with `room` free slots (no continuation when room is 0). */
const serving = (room: number, mode: DispatchMode = 'wake'): FinishOptions => ({
  queues: [QUEUE],
  room,
  claimQueued: false,
  outbox: mode === 'outbox',
});

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

/** Tasks whose open_steps counter disagrees with their steps. */
async function counterMismatches(): Promise<unknown[]> {
  const { rows } = await tdb.db.query(`
    SELECT t.id, t.state, t.open_steps, (SELECT count(*) FROM weft.steps s WHERE s.task_id = t.id AND s.state <> 'complete')::int AS open
      FROM weft.tasks t
     WHERE t.state = 'running' AND t.open_steps <> (SELECT count(*) FROM weft.steps s WHERE s.task_id = t.id AND s.state <> 'complete')`);
  return rows;
}

async function counts(): Promise<Record<string, number>> {
  const { rows } = await tdb.db.query(`
    SELECT (SELECT count(*) FROM weft.tasks)::int AS tasks, (SELECT count(*) FROM weft.steps)::int AS steps,
           (SELECT count(*) FROM weft.step_edges)::int AS edges,
           (SELECT count(*) FROM weft.task_transitions)::int AS task_transitions,
           (SELECT count(*) FROM weft.step_transitions)::int AS step_transitions,
           (SELECT count(*) FROM weft.outbox)::int AS messages`);
  return rows[0];
}

async function pathOf(stepId: string): Promise<string[]> {
  const { rows } = await tdb.db.query<{ p: string }>(
    `SELECT coalesce(from_state, '') || '>' || to_state AS p FROM weft.step_transitions WHERE step_id = $1 ORDER BY seq`,
    [stepId],
  );
  return rows.map((r) => r.p);
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

const finishedState = (o: StatementOutcome, id: string) => o.finished.find((f) => f.step_id === id)?.state;

describe('the rule tables', () => {
  it('weft.step_transition_rules equals STEP_TRANSITIONS exactly', async () => {
    const { rows } = await tdb.db.query<{ p: string }>(`SELECT from_state || ' → ' || to_state AS p FROM weft.step_transition_rules`);
    expect(rows.map((r) => r.p).sort()).toEqual(pairs(STEP_TRANSITIONS));
  });

  it('weft.task_transition_rules equals TASK_TRANSITIONS exactly', async () => {
    const { rows } = await tdb.db.query<{ p: string }>(`SELECT from_state || ' → ' || to_state AS p FROM weft.task_transition_rules`);
    expect(rows.map((r) => r.p).sort()).toEqual(pairs(TASK_TRANSITIONS));
  });

  it('the database accepts exactly the legal pairs: every (from, to) of both state machines tried', async () => {
    const { taskId } = await newTask();
    const stepId = await stepIdOf(taskId, 'diamond_end');
    const accepted = { step: [] as string[], task: [] as string[] };
    const client = await tdb.db.acquire();
    try {
      for (const [kind, states] of [
        ['step', STEP_STATES],
        ['task', TASK_STATES],
      ] as const) {
        for (const from of states) {
          for (const to of states) {
            await client.query('BEGIN');
            const ok = await client
              .query(
                kind === 'step'
                  ? `INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id) VALUES ($1, 99, $2, $3, $4, 'probe')`
                  : `INSERT INTO weft.task_transitions (task_id, seq, from_state, to_state, process_id) VALUES ($1, 99, $2, $3, 'probe')`,
                kind === 'step' ? [stepId, taskId, from, to] : [taskId, from, to],
              )
              .then(
                () => true,
                (err: pg.DatabaseError) => {
                  expect(err.code).toBe('23514');
                  expect(err.constraint).toBe(`${kind}_transitions_legal`);
                  return false;
                },
              );
            await client.query('ROLLBACK');
            if (ok) accepted[kind].push(`${from} → ${to}`);
          }
        }
      }
    } finally {
      client.release();
    }
    expect(accepted.step.sort()).toEqual(pairs(STEP_TRANSITIONS));
    expect(accepted.task.sort()).toEqual(pairs(TASK_TRANSITIONS));
  });
});

describe('an illegal transition is refused by the database', () => {
  it('a step row pending → complete violates the check, and the whole statement (state change included) rolls back', async () => {
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
    expect(err.code).toBe('23514');
    expect(err.constraint).toBe('step_transitions_legal');
    expect(err.message).toContain('violates check constraint "step_transitions_legal"');
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
    expect(err.code).toBe('23514');
    expect(err.constraint).toBe('step_transitions_legal');
    expect(await counts()).toEqual(before);
  });

  it('a task row complete → running violates the check and nothing changes', async () => {
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
    expect(err.code).toBe('23514');
    expect(err.constraint).toBe('task_transitions_legal');
    const { rows } = await tdb.db.query('SELECT state, seq FROM weft.tasks WHERE id = $1', [taskId]);
    expect(rows[0]).toEqual({ state: 'running', seq: 2 });
    expect(await counts()).toEqual(before);
  });

  it('a first transition row must be NULL → pending with seq 1 (check constraint)', async () => {
    const { taskId } = await newTask();
    const end = await stepIdOf(taskId, 'diamond_end');
    const err = await pgError(
      tdb.db.query(`INSERT INTO weft.step_transitions (step_id, seq, task_id, from_state, to_state, process_id) VALUES ($1, 2, $2, NULL, 'running', $3)`, [
        end,
        taskId,
        PID,
      ]),
    );
    expect(err.code).toBe('23514');
    expect(err.constraint).toBe('step_transitions_check');
  });
});

describe('two writers racing the same transition: exactly one wins', () => {
  it('two workers claiming the queue at once, 40 times: each ready step is claimed once, with one transition row', async () => {
    // Steps earlier tests left in the queue are taken first.
    await claimQueued(tdb.db, 'drain', [QUEUE], 10_000);
    for (let i = 0; i < 40; i++) {
      const { taskId, dispatch } = await newTask();
      expect(dispatch.enqueued.get(QUEUE)).toBe(1);
      const [a, b] = await Promise.all([claimQueued(tdb.db, `worker-a-${i}`, [QUEUE], 8), claimQueued(other, `worker-b-${i}`, [QUEUE], 8)]);
      const winners = [...a.claimed, ...b.claimed];
      expect(winners, `round ${i}`).toHaveLength(1);
      const winner = winners[0]!;
      expect(winner).toMatchObject({ task_id: taskId, name: 'diamond_start', attempt: 1, failures: 0, queue: QUEUE });
      expect(JSON.parse(winner.contextJson)).toEqual({ even_number: 6 });
      expect(JSON.parse(winner.dependencyResultsJson)).toEqual({});
      const row = await stepRow(winner.id);
      expect(row).toMatchObject({ state: 'running', seq: 3, attempts: 1, worker_id: a.claimed.length ? `worker-a-${i}` : `worker-b-${i}` });
      expect(await pathOf(winner.id)).toEqual(['>pending', 'pending>enqueued', 'enqueued>running']);
    }
    expect(await auditMismatches()).toEqual([]);
  });

  it('the same step claimed by id twice at once (a duplicate message): one claim, the other finds nothing', async () => {
    for (let i = 0; i < 20; i++) {
      const { dispatch } = await newTask();
      const stepId = dispatch.steps[0]!.step_id;
      const [a, b] = await Promise.all([claimIds(tdb.db, 'wa', [stepId]), claimIds(other, 'wb', [stepId])]);
      expect(a.claimed.length + b.claimed.length, `round ${i}`).toBe(1);
    }
    expect(await auditMismatches()).toEqual([]);
  });

  it('two finishes of the same attempt at once: one is applied, the other is not accepted', async () => {
    for (let i = 0; i < 20; i++) {
      const { dispatch } = await newTask();
      const step = await claim(dispatch.steps[0]!.step_id, 'w');
      const [a, b] = await Promise.all([finishSteps(tdb.db, 'w', [ok(step, 1)], serving(0)), finishSteps(other, 'w', [ok(step, 2)], serving(0))]);
      expect(a.finished.length + b.finished.length, `round ${i}`).toBe(1);
      const { rows } = await tdb.db.query('SELECT state, seq, result FROM weft.steps WHERE id = $1', [step.id]);
      expect(rows[0]).toEqual({ state: 'complete', seq: 4, result: a.finished.length ? 1 : 2 });
    }
    expect(await auditMismatches()).toEqual([]);
  });

  it('both branches of a diamond finishing at once in two processes: the end step is released exactly once', async () => {
    for (let i = 0; i < 20; i++) {
      const { taskId, dispatch } = await newTask();
      const start = await claim(dispatch.steps[0]!.step_id, 'w0');
      const out = await finishSteps(tdb.db, 'w0', [ok(start)], serving(0));
      expect(out.dispatch.enqueued.get(QUEUE)).toBe(2);
      const b = await claim(await stepIdOf(taskId, 'diamond_branch_b'), 'wb');
      const c = await claim(await stepIdOf(taskId, 'diamond_branch_c'), 'wc', other);
      const [rb, rc] = await Promise.all([finishSteps(tdb.db, 'wb', [ok(b, 1296)], serving(1)), finishSteps(other, 'wc', [ok(c, 1296)], serving(1))]);
      const released = [...rb.claimed, ...rc.claimed];
      expect(
        released.map((r) => r.name),
        `round ${i}`,
      ).toEqual(['diamond_end']);
      expect(JSON.parse(released[0]!.dependencyResultsJson)).toEqual({ diamond_branch_b: 1296, diamond_branch_c: 1296 });
      const end = await stepRow(released[0]!.id);
      expect(end).toMatchObject({ state: 'running', pending_parents: 0, attempts: 1 });
      expect(await pathOf(released[0]!.id)).toEqual(['>pending', 'pending>running']);
    }
    expect(await auditMismatches()).toEqual([]);
    expect(await counterMismatches()).toEqual([]);
  });

  it('two batches finishing steps of the same two tasks in opposite orders never deadlock (task locks in id order)', async () => {
    for (let i = 0; i < 15; i++) {
      const [t1, t2] = await Promise.all([newTask(), newTask()]);
      const s1 = await claim(t1.dispatch.steps[0]!.step_id, 'w');
      const s2 = await claim(t2.dispatch.steps[0]!.step_id, 'w');
      const out1 = await finishSteps(tdb.db, 'w', [ok(s1), ok(s2)], serving(0));
      expect(out1.finished).toHaveLength(2);
      // Four branches now: batch A finishes t1's b and t2's c, batch B t2's b and t1's c, concurrently.
      const byName = async (t: string, n: string) => claim(await stepIdOf(t, n), n.endsWith('b') ? 'wa' : 'wb');
      const t1b = await byName(t1.taskId, 'diamond_branch_b');
      const t2c = await byName(t2.taskId, 'diamond_branch_c');
      const t2b = await byName(t2.taskId, 'diamond_branch_b');
      const t1c = await byName(t1.taskId, 'diamond_branch_c');
      const [a, b] = await Promise.all([finishSteps(tdb.db, 'wa', [ok(t1b), ok(t2b)], serving(0)), finishSteps(other, 'wb', [ok(t2c), ok(t1c)], serving(0))]);
      expect(a.finished.length + b.finished.length, `round ${i}`).toBe(4);
      expect(a.dispatch.steps.length + b.dispatch.steps.length).toBe(2);
    }
    expect(await auditMismatches()).toEqual([]);
    expect(await counterMismatches()).toEqual([]);
  });

  it('two blind writers that read the same seq: the (step_id, seq) primary key lets one commit and refuses the other', async () => {
    const { dispatch, taskId } = await newTask();
    const stepId = dispatch.steps[0]!.step_id;
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

describe('the finish statement', () => {
  it("a chain continues in place: the children in the worker's own queue are claimed for it in the same statement", async () => {
    const { taskId, dispatch } = await newTask();
    const start = await claim(dispatch.steps[0]!.step_id, 'w');
    // Room for both branches: both are claimed for w, nothing is left for anyone else.
    const out = await finishSteps(tdb.db, 'w', [ok(start)], serving(2));
    expect(finishedState(out, start.id)).toBe('complete');
    expect(out.claimed.map((c) => c.name).sort()).toEqual(['diamond_branch_b', 'diamond_branch_c']);
    for (const c of out.claimed) {
      expect(c).toMatchObject({ attempt: 1, queue: QUEUE });
      expect(JSON.parse(c.dependencyResultsJson)).toEqual({ diamond_start: 36 });
      expect(await stepRow(c.id)).toMatchObject({ state: 'running', worker_id: 'w', attempts: 1 });
      expect(await pathOf(c.id)).toEqual(['>pending', 'pending>running']);
    }
    expect(out.dispatch.steps).toEqual([]);
    expect(await pathOf(start.id)).toEqual(['>pending', 'pending>enqueued', 'enqueued>running', 'running>complete']);
    expect(await counterMismatches()).toEqual([]);
    expect(await stepRow(await stepIdOf(taskId, 'diamond_end'))).toMatchObject({ state: 'pending', pending_parents: 2 });
  });

  it("children that do not all fit the worker's room, or are not in its queues, are enqueued for anyone", async () => {
    const first = await newTask();
    const s1 = await claim(first.dispatch.steps[0]!.step_id, 'w');
    const out = await finishSteps(tdb.db, 'w', [ok(s1)], serving(1));
    expect(out.claimed).toEqual([]);
    expect(out.dispatch.enqueued).toEqual(new Map([[QUEUE, 2]]));
    expect(out.dispatch.steps.map((d) => d.name).sort()).toEqual(['diamond_branch_b', 'diamond_branch_c']);
    for (const d of out.dispatch.steps) expect(await pathOf(d.step_id)).toEqual(['>pending', 'pending>enqueued']);

    const second = await newTask();
    const s2 = await claim(second.dispatch.steps[0]!.step_id, 'x');
    const out2 = await finishSteps(tdb.db, 'x', [ok(s2)], { queues: ['step.elsewhere.native'], room: 8, claimQueued: false, outbox: false });
    expect(out2.claimed).toEqual([]);
    expect(out2.dispatch.steps).toHaveLength(2);
    expect(await counterMismatches()).toEqual([]);
  });

  it('completes the task with its last step and reports it, with the server-side duration', async () => {
    const { taskId, dispatch } = await newTask();
    let running = [await claim(dispatch.steps[0]!.step_id, 'w')];
    let ended: StatementOutcome['taskEnds'] = [];
    while (running.length) {
      const out = await finishSteps(
        tdb.db,
        'w',
        running.map((s) => ok(s, 1)),
        serving(8),
      );
      ended = [...ended, ...out.taskEnds];
      running = out.claimed;
    }
    expect(ended).toEqual([{ task_id: taskId, state: 'complete', namespace: 'e2e_diamond', name: 'diamond_pattern', ms: expect.any(Number) }]);
    const v = await getTaskView(tdb.db, taskId);
    expect(v!.state).toBe('complete');
    expect(v!.steps.every((s) => s.state === 'complete')).toBe(true);
    expect(v!.completed_at).toBeInstanceOf(Date);
    const { rows } = await tdb.db.query(
      `SELECT array_agg(coalesce(from_state, '') || '>' || to_state ORDER BY seq) AS p FROM weft.task_transitions WHERE task_id = $1`,
      [taskId],
    );
    expect(rows[0].p).toEqual(['>pending', 'pending>running', 'running>complete']);
    expect(await auditMismatches()).toEqual([]);
  });

  it('with the outbox (a broker), the steps it enqueues come back as messages written in the same transaction', async () => {
    const { dispatch } = await newTask({ mode: 'outbox' });
    expect(dispatch.outbox).toHaveLength(1);
    expect(dispatch.enqueued.size).toBe(0);
    const start = await claim(dispatch.outbox[0]!.body.step_id, 'w');
    const out = await finishSteps(tdb.db, 'w', [ok(start)], serving(0, 'outbox'));
    expect(out.dispatch.outbox.map((m) => m.queue)).toEqual([QUEUE, QUEUE]);
    const ids = out.dispatch.outbox.map((m) => m.id);
    const { rows } = await tdb.db.query(`SELECT id::text, queue, body FROM weft.outbox WHERE id = ANY($1::bigint[]) ORDER BY id`, [ids]);
    expect(rows.map((r) => r.body.step_id).sort()).toEqual(out.dispatch.outbox.map((m) => m.body.step_id).sort());
  });

  it('a failure with retry_ms becomes waiting_retry, counted as a failure; dispatched again once due', async () => {
    const { dispatch } = await newTask();
    const step = await claim(dispatch.steps[0]!.step_id, 'w');
    const out = await finishSteps(tdb.db, 'w', [failed(step, 0)], serving(0));
    expect(out.finished[0]).toMatchObject({ state: 'waiting_retry', run_after: expect.any(Date) });
    expect(await stepRow(step.id)).toMatchObject({ state: 'waiting_retry', failures: 1, attempts: 1 });
    const again = await dispatchDueRetries(tdb.db, PID, 'wake');
    expect(again.dispatch.steps.map((s) => s.step_id)).toContain(step.id);
    const second = await claim(step.id, 'w2');
    expect(second).toMatchObject({ attempt: 2, failures: 1 });
    const view = await getTaskView(tdb.db, dispatch.steps[0]!.task_id);
    const s = view!.steps.find((x) => x.id === step.id)!;
    expect(s.errors).toEqual([expect.objectContaining({ class: 'Boom', message: 'no', attempt: 1 })]);
    expect(await pathOf(step.id)).toEqual([
      '>pending',
      'pending>enqueued',
      'enqueued>running',
      'running>waiting_retry',
      'waiting_retry>enqueued',
      'enqueued>running',
    ]);
  });

  it('a failure without retry fails the step and the task, and cancels every step not started', async () => {
    const { taskId, dispatch } = await newTask();
    const step = await claim(dispatch.steps[0]!.step_id, 'w');
    const out = await finishSteps(tdb.db, 'w', [failed(step, null, true)], serving(8));
    expect(out.finished[0]!.state).toBe('error');
    expect(out.taskEnds).toEqual([expect.objectContaining({ task_id: taskId, state: 'error' })]);
    const v = await getTaskView(tdb.db, taskId);
    expect(v!.state).toBe('error');
    expect(v!.error).toMatchObject({ step: 'diamond_start', reason: 'permanent error', error: { class: 'Boom' } });
    expect(Object.fromEntries(v!.steps.map((s) => [s.name, s.state]))).toEqual({
      diamond_start: 'error',
      diamond_branch_b: 'cancelled',
      diamond_branch_c: 'cancelled',
      diamond_end: 'cancelled',
    });
    expect(await auditMismatches()).toEqual([]);
  });

  it('a step of a task that already failed finishes as recorded but releases nothing', async () => {
    const { taskId, dispatch } = await newTask();
    const start = await claim(dispatch.steps[0]!.step_id, 'w');
    await finishSteps(tdb.db, 'w', [ok(start)], serving(0));
    const b = await claim(await stepIdOf(taskId, 'diamond_branch_b'), 'w');
    const c = await claim(await stepIdOf(taskId, 'diamond_branch_c'), 'w');
    await finishSteps(tdb.db, 'w', [failed(b, null, true)], serving(0));
    const out = await finishSteps(tdb.db, 'w', [ok(c)], serving(8));
    expect(finishedState(out, c.id)).toBe('complete');
    expect(out.claimed).toEqual([]);
    expect(out.dispatch.steps).toEqual([]);
    expect((await stepRow(await stepIdOf(taskId, 'diamond_end'))).state).toBe('cancelled');
  });

  it('is fenced: a finish from another worker, or from an earlier attempt, changes nothing', async () => {
    const { dispatch } = await newTask();
    const step = await claim(dispatch.steps[0]!.step_id, 'w');
    const before = await stepRow(step.id);
    expect((await finishSteps(tdb.db, 'someone-else', [ok(step)], serving(0))).finished).toEqual([]);
    expect((await finishSteps(tdb.db, 'w', [ok({ id: step.id, attempt: 7 })], serving(0))).finished).toEqual([]);
    expect(await stepRow(step.id)).toEqual(before);
    // The holder's finish goes through; the same finish again (a retried write) is not applied twice.
    expect(finishedState(await finishSteps(tdb.db, 'w', [ok(step)], serving(0)), step.id)).toBe('complete');
    expect((await finishSteps(tdb.db, 'w', [ok(step)], serving(0))).finished).toEqual([]);
    expect(await auditMismatches()).toEqual([]);
  });

  it('a batch with one result PostgreSQL refuses: the others are applied, that one fails permanently, naming the reason', async () => {
    const [t1, t2] = await Promise.all([newTask(), newTask()]);
    const s1 = await claim(t1.dispatch.steps[0]!.step_id, 'w');
    const s2 = await claim(t2.dispatch.steps[0]!.step_id, 'w');
    const bad: FinishItem = { id: s2.id, attempt: 1, ok: true, resultJson: '{"text":"nul \\u0000 here"}', durationMs: 1 };
    const out = await finishSteps(tdb.db, 'w', [ok(s1), bad], serving(0));
    expect(finishedState(out, s1.id)).toBe('complete');
    expect(finishedState(out, s2.id)).toBe('error');
    const v = await getTaskView(tdb.db, t2.taskId);
    expect(v!.state).toBe('error');
    expect(v!.steps.find((s) => s.id === s2.id)!.error).toMatchObject({
      class: 'InvalidResultError',
      permanent: true,
      message: expect.stringContaining('could not be stored'),
    });
  });

  it('a batch with one failure PostgreSQL refuses: the others are applied, that one fails for good, naming what was refused', async () => {
    const [t1, t2] = await Promise.all([newTask(), newTask()]);
    const s1 = await claim(t1.dispatch.steps[0]!.step_id, 'w');
    const s2 = await claim(t2.dispatch.steps[0]!.step_id, 'w');
    // A retry delay past int4: a data error (22003) of this one item, not of the connection.
    const bad = failed(s2, 2 ** 31);
    const out = await finishSteps(tdb.db, 'w', [ok(s1), bad], serving(0));
    expect(finishedState(out, s1.id)).toBe('complete');
    expect(finishedState(out, s2.id)).toBe('error');
    const v = await getTaskView(tdb.db, t2.taskId);
    expect(v!.state).toBe('error');
    const step = v!.steps.find((s) => s.id === s2.id)!;
    expect(step.error).toMatchObject({ class: 'UnstorableFailureError', permanent: true, kind: 'unstorable_failure' });
    expect((step.error as { message: string }).message).toMatch(
      /^the step failed \(Boom: no\), but the failure could not be recorded as reported: .*out of range for type integer\. It is failed for good/,
    );
    expect(await auditMismatches()).toEqual([]);
  });

  it('an error record with NUL, lone surrogates and an 8 MB message is stored, replaced and capped, by the store itself', async () => {
    const { taskId, dispatch } = await newTask();
    const s = await claim(dispatch.steps[0]!.step_id, 'w');
    const item = {
      ...failed(s, null, true),
      error: {
        language: 'ruby',
        class: 'Bad\u0000Class',
        message: `nul \u0000 half \ud800 ${'x'.repeat(8 << 20)}`,
        backtrace: ['a\udc00:1'],
        permanent: true,
        kind: 'raised',
      },
    } as FinishItem;
    expect(finishedState(await finishSteps(tdb.db, 'w', [item], serving(0)), s.id)).toBe('error');
    const error = (await getTaskView(tdb.db, taskId))!.steps.find((x) => x.id === s.id)!.error as Record<string, unknown>;
    expect(error).toMatchObject({ class: 'Bad\uFFFDClass', backtrace: ['a\uFFFD:1'], truncated: true });
    expect(error.message).toMatch(/^nul \uFFFD half \uFFFD x+ … \[cut by weft: 8388625 bytes in all, 65536 kept\]$/);
  });
});

describe('lost workers', () => {
  it('a step whose worker stopped heartbeating runs again without using the retry budget; the late result is accepted until someone claims it', async () => {
    const { dispatch } = await newTask();
    await registerProcess(tdb.db, { id: 'gone', kind: 'worker', runtime: 'native' });
    const step = await claim(dispatch.steps[0]!.step_id, 'gone');
    await tdb.db.query(`UPDATE weft.processes SET heartbeat_at = now() - interval '1 hour' WHERE id = 'gone'`);
    await tdb.db.query(`UPDATE weft.steps SET started_at = now() - interval '1 hour' WHERE id = $1`, [step.id]);
    const lost = await requeueLostSteps(tdb.db, PID, 1_000, 5, 'wake');
    expect(lost.dispatch.steps.map((s) => s.step_id)).toContain(step.id);
    expect(await stepRow(step.id)).toMatchObject({ state: 'enqueued', failures: 0, losses: 1, attempts: 1 });
    // The worker was only slow: its result comes back before anyone claimed the step, and counts.
    const out = await finishSteps(tdb.db, 'gone', [ok(step)], serving(0));
    expect(finishedState(out, step.id)).toBe('complete');
    expect(await pathOf(step.id)).toEqual(['>pending', 'pending>enqueued', 'enqueued>running', 'running>enqueued', 'enqueued>running', 'running>complete']);
    expect(await auditMismatches()).toEqual([]);
  });

  it("once another worker claimed it, the lost worker's late result is refused", async () => {
    const { dispatch } = await newTask();
    await registerProcess(tdb.db, { id: 'gone2', kind: 'worker', runtime: 'native' });
    const step = await claim(dispatch.steps[0]!.step_id, 'gone2');
    await tdb.db.query(`UPDATE weft.processes SET heartbeat_at = now() - interval '1 hour' WHERE id = 'gone2'`);
    await tdb.db.query(`UPDATE weft.steps SET started_at = now() - interval '1 hour' WHERE id = $1`, [step.id]);
    await requeueLostSteps(tdb.db, PID, 1_000, 5, 'wake');
    const second = await claim(step.id, 'alive');
    expect(second.attempt).toBe(2);
    expect((await finishSteps(tdb.db, 'gone2', [ok(step, 'late')], serving(0))).finished).toEqual([]);
    expect(finishedState(await finishSteps(tdb.db, 'alive', [ok(second, 'fresh')], serving(0)), step.id)).toBe('complete');
    const { rows } = await tdb.db.query('SELECT result FROM weft.steps WHERE id = $1', [step.id]);
    expect(rows[0].result).toBe('fresh');
  });

  it("a live worker's steps are left alone, and a step that lost its worker max times fails its task saying why", async () => {
    const { taskId, dispatch } = await newTask();
    await registerProcess(tdb.db, { id: 'alive-worker', kind: 'worker', runtime: 'native' });
    const step = await claim(dispatch.steps[0]!.step_id, 'alive-worker');
    await tdb.db.query(`UPDATE weft.steps SET started_at = now() - interval '1 hour' WHERE id = $1`, [step.id]);
    const none = await requeueLostSteps(tdb.db, PID, 1_000, 5, 'wake');
    expect(none.dispatch.steps.map((s) => s.step_id)).not.toContain(step.id);
    expect((await stepRow(step.id)).state).toBe('running');

    await tdb.db.query(`UPDATE weft.steps SET losses = 4, worker_id = 'never-registered' WHERE id = $1`, [step.id]);
    const out = await requeueLostSteps(tdb.db, PID, 1_000, 5, 'wake');
    expect(out.finished).toEqual([expect.objectContaining({ step_id: step.id, state: 'error' })]);
    expect(out.taskEnds).toEqual([expect.objectContaining({ task_id: taskId, state: 'error' })]);
    const v = await getTaskView(tdb.db, taskId);
    expect(v!.state).toBe('error');
    expect(v!.error).toMatchObject({ step: 'diamond_start', reason: 'worker lost 5 times', error: { class: 'WorkerLostError', permanent: true } });
    expect((v!.error as { error: { message: string } }).error.message).toContain('lost its worker 5 times');
    expect(await auditMismatches()).toEqual([]);
  });
});

describe('why workers were lost', () => {
  it("each loss is written into the step's errors with its cause, and WorkerLostError counts the causes", async () => {
    const { taskId, dispatch } = await newTask();
    const stepId = dispatch.steps[0]!.step_id;
    /** A worker claims the step and is lost; its supervisor saw it exit as `exit` says, or nobody saw it go. */
    const lose = async (worker: string, exit?: ProcessExit) => {
      await registerProcess(tdb.db, { id: worker, kind: 'worker', runtime: 'native' });
      await claim(stepId, worker);
      if (exit) expect(await recordProcessExit(tdb.db, { pid: process.pid, exit, seenBy: 'the test' })).toBe(worker);
      await tdb.db.query(`UPDATE weft.processes SET heartbeat_at = now() - interval '1 hour' WHERE id = $1`, [worker]);
      await tdb.db.query(`UPDATE weft.steps SET started_at = now() - interval '1 hour' WHERE id = $1`, [stepId]);
      return requeueLostSteps(tdb.db, PID, 1_000, 4, 'wake');
    };
    await lose('crash-1', describeExit(null, 'SIGSEGV'));
    await lose('silent-1');
    await lose('crash-2', describeExit(null, 'SIGSEGV'));
    const out = await lose('exit-70', describeExit(70, null));
    expect(out.finished).toEqual([expect.objectContaining({ step_id: stepId, state: 'error' })]);
    const v = (await getTaskView(tdb.db, taskId))!;
    const step = v.steps.find((s) => s.id === stepId)!;
    expect((step.error as { message: string }).message).toBe(
      'step diamond_start lost its worker 4 times: 2 crashed (SIGSEGV), 1 exited (code 70), 1 went silent (killed from outside, ' +
        'crashed with no supervisor watching, or cut off from the database); it is not run again (the last worker, exit-70, was running ' +
        'attempt 4). A handler that kills or hangs its process (os._exit, a crash, running out of memory) does this: fix the handler, then retry the task',
    );
    expect((step.errors as Array<Record<string, unknown>>).map((e) => [e.attempt, e.cause, e.signal ?? e.code ?? null, e.message])).toEqual([
      [1, 'crashed', 'SIGSEGV', 'attempt 1 lost its worker crash-1: it crashed (SIGSEGV), as the test saw'],
      [
        2,
        'went silent',
        null,
        'attempt 2 lost its worker silent-1: it went silent (killed from outside, crashed with no supervisor watching, or cut off from the database)',
      ],
      [3, 'crashed', 'SIGSEGV', 'attempt 3 lost its worker crash-2: it crashed (SIGSEGV), as the test saw'],
      [4, 'exited', 70, 'attempt 4 lost its worker exit-70: it exited (code 70), as the test saw'],
    ]);
    expect(v.error).toMatchObject({ reason: 'worker lost 4 times', error: { class: 'WorkerLostError' } });
    expect(await auditMismatches()).toEqual([]);
  });

  it('tells kills its supervisor saw (SIGKILL, SIGTERM) apart from crashes', async () => {
    const { taskId, dispatch } = await newTask();
    const stepId = dispatch.steps[0]!.step_id;
    for (const [worker, signal] of [
      ['kill-1', 'SIGKILL'],
      ['crash-3', 'SIGSEGV'],
      ['kill-2', 'SIGKILL'],
      ['term-1', 'SIGTERM'],
    ] as const) {
      await registerProcess(tdb.db, { id: worker, kind: 'worker', runtime: 'native' });
      await claim(stepId, worker);
      expect(await recordProcessExit(tdb.db, { pid: process.pid, exit: describeExit(null, signal), seenBy: 'the test' })).toBe(worker);
      await tdb.db.query(`UPDATE weft.processes SET heartbeat_at = now() - interval '1 hour' WHERE id = $1`, [worker]);
      await tdb.db.query(`UPDATE weft.steps SET started_at = now() - interval '1 hour' WHERE id = $1`, [stepId]);
      await requeueLostSteps(tdb.db, PID, 1_000, 4, 'wake');
    }
    const step = (await getTaskView(tdb.db, taskId))!.steps.find((s) => s.id === stepId)!;
    expect((step.error as { message: string }).message).toMatch(
      /^step diamond_start lost its worker 4 times: 2 killed \(SIGKILL\), 1 crashed \(SIGSEGV\), 1 killed \(SIGTERM\); it is not run again/,
    );
    expect((step.errors as Array<Record<string, unknown>>).map((e) => [e.cause, e.signal, e.message])).toEqual([
      ['killed', 'SIGKILL', 'attempt 1 lost its worker kill-1: it was killed (SIGKILL), as the test saw'],
      ['crashed', 'SIGSEGV', 'attempt 2 lost its worker crash-3: it crashed (SIGSEGV), as the test saw'],
      ['killed', 'SIGKILL', 'attempt 3 lost its worker kill-2: it was killed (SIGKILL), as the test saw'],
      ['killed', 'SIGTERM', 'attempt 4 lost its worker term-1: it was killed (SIGTERM), as the test saw'],
    ]);
  });
});

describe("the broker's sweeps", () => {
  it('an enqueued step nobody claimed for a while gets a new outbox message (enqueued → enqueued)', async () => {
    const { dispatch } = await newTask({ mode: 'outbox' });
    const stepId = dispatch.outbox[0]!.body.step_id;
    await tdb.db.query(`UPDATE weft.steps SET enqueued_at = now() - interval '1 hour' WHERE id = $1`, [stepId]);
    const out = await redispatchStale(tdb.db, PID, 60_000);
    expect(out.dispatch.outbox.map((m) => m.body.step_id)).toContain(stepId);
    expect(await pathOf(stepId)).toEqual(['>pending', 'pending>enqueued', 'enqueued>enqueued']);
    expect(await auditMismatches()).toEqual([]);
  });
});

describe('createTask is all-or-nothing', () => {
  it('an idempotency-key conflict is a ConflictError naming the key and the existing task, and creates nothing', async () => {
    const key = `order-${Date.now()}`;
    const first = await newTask({ idempotencyKey: key, mode: 'outbox' });
    const before = await counts();
    const err = await newTask({ idempotencyKey: key, mode: 'outbox' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).name).toBe('ConflictError');
    expect((err as ConflictError).code).toBe('conflict');
    expect((err as ConflictError).message).toBe(
      `a task with idempotency_key "${key}" already exists (${first.taskId}); use a new key to create another task, or GET the existing one`,
    );
    expect((err as ConflictError).details).toEqual({ task_id: first.taskId });
    expect(await counts()).toEqual(before);
  });

  it('two createTask calls racing with one idempotency key: one task, the other call is a ConflictError (10 rounds)', async () => {
    for (let i = 0; i < 10; i++) {
      const key = `race-${i}-${Math.random().toString(36).slice(2, 10)}`;
      const before = await counts();
      const outcomes = await Promise.allSettled([
        newTask({ idempotencyKey: key, mode: 'outbox' }),
        newTask({ idempotencyKey: key, mode: 'outbox', db: other }),
      ]);
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
      createTask(tdb.db, { namespace: diamond.namespace, name: diamond.name, version: diamond.version, context: {}, steps: [...planned, dup] }, PID, 'outbox'),
    );
    expect(err.code).toBe('23505');
    expect(err.message).toContain('duplicate key value violates unique constraint');
    expect(await counts()).toEqual(before);
  });

  it('a task of an unregistered template version is a NotFoundError naming it, and leaves nothing', async () => {
    const before = await counts();
    const err = await createTask(
      tdb.db,
      { namespace: diamond.namespace, name: diamond.name, version: '9.9.9', context: {}, steps: initialSteps(diamond) },
      PID,
      'outbox',
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain('no template e2e_diamond/diamond_pattern@9.9.9 is registered');
    expect(await counts()).toEqual(before);
  });
});

describe('getTaskView', () => {
  it('returns the task with every step: state, attempts, failures, worker, parents, timings', async () => {
    const { taskId, dispatch } = await newTask({ idempotencyKey: `view-${Math.random().toString(36).slice(2, 10)}` });
    const step = await claim(dispatch.steps[0]!.step_id, 'w');
    await finishSteps(tdb.db, 'w', [ok(step)], serving(0));
    const view = await getTaskView(tdb.db, taskId);
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
    const byName = Object.fromEntries(view!.steps.map((s) => [s.name, s]));
    expect(Object.keys(byName).sort()).toEqual(['diamond_branch_b', 'diamond_branch_c', 'diamond_end', 'diamond_start']);
    expect(byName.diamond_start).toMatchObject({
      id: step.id,
      template_step: 'diamond_start',
      type: 'standard',
      runtime: 'native',
      handler: 'diamond.start',
      state: 'complete',
      attempts: 1,
      failures: 0,
      losses: 0,
      worker_id: 'w',
      queue: QUEUE,
      parents: [],
      result: 36,
      error: null,
      errors: [],
      batch: null,
      run_after: null,
    });
    for (const k of ['created_at', 'enqueued_at', 'started_at', 'finished_at'] as const) expect(byName.diamond_start![k]).toBeInstanceOf(Date);
    // Microseconds from PostgreSQL; the Dates carry milliseconds.
    expect(
      Math.abs(byName.diamond_start!.duration_ms! - (byName.diamond_start!.finished_at!.getTime() - byName.diamond_start!.started_at!.getTime())),
    ).toBeLessThan(1);
    expect(byName.diamond_end).toMatchObject({
      state: 'pending',
      attempts: 0,
      parents: ['diamond_branch_b', 'diamond_branch_c'],
      result: null,
      started_at: null,
    });
    const noContext = await getTaskView(tdb.db, taskId, { withContext: false });
    expect(noContext!.context).toBeNull();
  });

  it('an unknown task id gives undefined', async () => {
    expect(await getTaskView(tdb.db, '00000000-0000-7000-8000-000000000000')).toBeUndefined();
  });
});
