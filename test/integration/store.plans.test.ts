/**
 * The step boundary's functions find the rows they were handed by id (steps_pkey, tasks_pkey), never by walking a
 * partial index on state (steps_ready, steps_running, tasks_active, ...) with the id as a filter. A state written as a
 * literal beside the id lets the planner prove such an index's predicate and prefer it, and it does when the
 * statistics are stale: tables never analysed (autovacuum off), or analysed while empty (the orchestrator's start,
 * analyzeNeverAnalyzed) with the backlog arriving after. Then a claim of 32 steps behind 10,000 ready ones took 15-25
 * ms instead of 0.3 (commit e063010). The functions compare states with plpgsql variables instead, under generic
 * plans, from which no partial index's predicate can be proved (sql/functions/claim_steps.sql says more).
 *
 * Each check calls one function inside a transaction and reads the index scans it made from the transaction's own
 * statistics (pg_stat_get_xact_numscans, no flush needed), behind a backlog of ready, running, waiting and unstarted
 * workflow steps, in both situations. A sweep that picks its rows through a partial index (the retries due, the
 * stale or lost steps, the delayed starts due) scans that index once, for the pick, and no more.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { claimIds } from '../../src/store/claim.js';
import { itemsJson, type FinishItem } from '../../src/store/finish.js';
import { analyzeNeverAnalyzed } from '../../src/store/maintenance.js';
import { createTasks, type NewBatchTask } from '../../src/store/tasks.js';
import { registerTemplate } from '../../src/store/templates.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { initialSteps } from '../../src/core/plan.js';
import type { TemplateDefinition } from '../../src/core/template/types.js';

const NS = 'plans';
const QUEUE = `step.${NS}.native`;
const WORKER = 'plans-worker';
const PID = 'plans-test';

const ONE = parseTemplate(`namespace: ${NS}\nname: one\nversion: 1.0.0\nsteps:\n  - { name: only, handler: t.only }\n`, 'one.yaml');
const HELD = parseTemplate(`namespace: ${NS}\nname: held\nversion: 1.0.0\nsteps:\n  - { name: hold, type: wait }\n`, 'held.yaml');
const PARENT = parseTemplate(
  `namespace: ${NS}\nname: parent\nversion: 1.0.0\nsteps:\n  - { name: child, type: workflow, workflow: { name: held } }\n`,
  'parent.yaml',
);

/** The backlog behind every call: ready steps, some of them running (another worker's), waits, unstarted workflow steps. */
const READY = 1_500;
const RUNNING = 200;
const WAITING = 100;
const UNSTARTED = 100;

/** The partial indexes on state of weft.steps and weft.tasks (migrations 002, 007, 009, 001). */
const PARTIAL = [
  'steps_ready',
  'steps_running',
  'steps_wait_due',
  'steps_retry_due',
  'steps_workflow_unstarted',
  'steps_workflow_child',
  'tasks_active',
  'tasks_start_due',
];

type Scans = Record<string, { scans: number; read: number }>;

const COUNTERS_SQL = `
  SELECT c.relname AS index, coalesce(pg_stat_get_xact_numscans(c.oid), 0)::int AS scans,
         coalesce(pg_stat_get_xact_tuples_returned(c.oid), 0)::int AS read
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
   WHERE i.indrelid IN ('weft.steps'::regclass, 'weft.tasks'::regclass)`;

async function counters(c: pg.ClientBase): Promise<Map<string, { scans: number; read: number }>> {
  const { rows } = await c.query<{ index: string; scans: number; read: number }>(COUNTERS_SQL);
  return new Map(rows.map((r) => [r.index, { scans: r.scans, read: r.read }]));
}

/** Run one statement and return its rows and the index scans it made (indexes it did not scan are absent). */
async function measured<R extends pg.QueryResultRow>(c: pg.ClientBase, sql: string, params: unknown[]): Promise<{ rows: R[]; scans: Scans }> {
  const before = await counters(c);
  const { rows } = await c.query<R>(sql, params);
  const after = await counters(c);
  const scans: Scans = {};
  for (const [index, a] of after) {
    const b = before.get(index) ?? { scans: 0, read: 0 };
    if (a.scans !== b.scans) scans[index] = { scans: a.scans - b.scans, read: a.read - b.read };
  }
  return { rows, scans };
}

/**
 * `label` found its rows by key: it scanned no partial index on state (but `pick`, once, the one a sweep picks its
 * rows through), and no index of weft.steps or weft.tasks read `walk` entries or more (a walk of the whole of
 * steps_pkey, as a join that puts it on the outer side does, reads every step). Said in one message with every scan.
 */
function expectFoundByKey(label: string, scans: Scans, { pick, walk = 100 }: { pick?: string; walk?: number } = {}): void {
  const seen = `${label} scanned ${JSON.stringify(scans)}`;
  const partial = Object.fromEntries(Object.entries(scans).filter(([index]) => PARTIAL.includes(index) && index !== pick));
  expect(partial, `${seen}: partial indexes on state`).toEqual({});
  const walked = Object.fromEntries(Object.entries(scans).filter(([index, s]) => index !== pick && s.read >= walk));
  expect(walked, `${seen}: indexes read ${walk} entries or more`).toEqual({});
  if (pick) expect(scans[pick]?.scans, `${seen}: scans of ${pick}, the pick`).toBe(1);
}

const FINISH_SQL = 'SELECT * FROM weft.finish_steps($1, $2::uuid[], $3::jsonb, $4::jsonb, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13, $14)';

/** weft.finish_steps as a worker without room calls it (claims nothing more), for these items. */
function finishParams(items: FinishItem[]): unknown[] {
  const { successes, failures } = itemsJson(items);
  return [WORKER, items.map((i) => i.id), successes, failures, null, [QUEUE], 0, false, false, null, null, 0, 0, 0];
}

interface StepEvent {
  kind: string;
  step_id: string;
  task_id: string;
  state: string;
  attempt: number;
}

const SITUATIONS = [
  { situation: 'tables never analysed (autovacuum off)', analyse: false },
  { situation: 'tables analysed while empty (an orchestrator starting), the backlog arriving after', analyse: true },
];

describe.each(SITUATIONS)('with $situation, the hot functions find their rows by id', ({ analyse }) => {
  let tdb: TestDatabase;
  let c: pg.PoolClient;
  /** Ready steps nobody else touches, handed out to the checks a few at a time. */
  let ready: Array<{ id: string; task_id: string }>;
  let waiting: Array<{ id: string; task_id: string }>;
  let unstarted: Array<{ id: string; task_id: string; seq: number }>;
  let heldTasks: string[];
  let delayedTask: string;

  function take<T>(from: T[], n: number): T[] {
    expect(from.length, 'enough backlog left for this check').toBeGreaterThanOrEqual(n);
    return from.splice(0, n);
  }

  async function create(def: TemplateDefinition, n: number, runAt?: Date): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i += 500) {
      const batch: NewBatchTask[] = Array.from({ length: Math.min(500, n - i) }, (_, k) => ({
        item: k,
        namespace: def.namespace,
        name: def.name,
        version: def.version,
        context: {},
        steps: initialSteps(def),
        ...(runAt ? { runAt } : {}),
      }));
      const { outcomes } = await createTasks(tdb.db, batch, PID, 'wake');
      ids.push(...outcomes.map((o) => o.taskId));
    }
    return ids;
  }

  async function stepsOf(taskIds: string[]) {
    const { rows } = await tdb.db.query<{ id: string; task_id: string; seq: number }>(
      'SELECT id, task_id, seq FROM weft.steps WHERE task_id = ANY($1::uuid[]) ORDER BY id',
      [taskIds],
    );
    return rows;
  }

  beforeAll(async () => {
    tdb = await createTestDatabase();
    if (analyse) expect(await analyzeNeverAnalyzed(tdb.db)).toContain('weft.steps');
    for (const def of [ONE, HELD, PARENT]) await registerTemplate(tdb.db, def);
    const oneTasks = await create(ONE, READY);
    heldTasks = await create(HELD, WAITING);
    const parentTasks = await create(PARENT, UNSTARTED);
    delayedTask = (await create(ONE, 1, new Date(Date.now() + 3_600_000)))[0]!;
    const steps = await stepsOf(oneTasks);
    // Another worker runs some of them (committed): steps_running is not empty.
    const busyIds = steps.splice(0, RUNNING).map((s) => s.id);
    const busy = await claimIds(tdb.db, 'busy-worker', busyIds);
    expect(busy.claimed).toHaveLength(RUNNING);
    ready = steps;
    waiting = await stepsOf(heldTasks);
    unstarted = await stepsOf(parentTasks);
    c = await tdb.db.acquire();
    const { rows } = await c.query<{ index: string }>(COUNTERS_SQL);
    expect(rows.map((r) => r.index)).toEqual(expect.arrayContaining([...PARTIAL, 'steps_pkey', 'tasks_pkey']));
  });
  afterAll(async () => {
    c?.release();
    await tdb?.drop();
  });

  /** Each check runs in a transaction of its own, rolled back: the backlog stays as it is. */
  async function inTransaction(check: () => Promise<void>): Promise<void> {
    await c.query('BEGIN');
    try {
      await check();
    } finally {
      await c.query('ROLLBACK');
    }
  }

  async function claim(steps: Array<{ id: string }>): Promise<StepEvent[]> {
    const { rows } = await c.query<StepEvent>('SELECT * FROM weft.claim_ids($1, $2::uuid[])', [WORKER, steps.map((s) => s.id)]);
    expect(rows.map((r) => r.step_id).sort()).toEqual(steps.map((s) => s.id).sort());
    return rows;
  }

  const success = (e: StepEvent): FinishItem => ({ id: e.step_id, attempt: e.attempt, ok: true, resultJson: '1', durationMs: 1 });
  const failure = (e: StepEvent, retryMs: number | null): FinishItem => ({
    id: e.step_id,
    attempt: e.attempt,
    ok: false,
    error: { class: 'Boom', message: 'boom', backtrace: [], permanent: retryMs === null, kind: 'exception', language: 'typescript' },
    retryMs,
    durationMs: 1,
  });

  it('weft.claim_ids (weft.claim_steps, weft.claimed_events) claims ready steps through steps_pkey', () =>
    inTransaction(async () => {
      const steps = take(ready, 8);
      const claimed = await measured<StepEvent>(c, 'SELECT * FROM weft.claim_ids($1, $2::uuid[])', [WORKER, steps.map((s) => s.id)]);
      expect(claimed.rows).toHaveLength(8);
      expectFoundByKey('weft.claim_ids', claimed.scans);
      expect(claimed.scans.steps_pkey?.scans).toBeGreaterThan(0);

      const events = await measured<StepEvent>(c, 'SELECT * FROM weft.claimed_events($1::uuid[])', [steps.map((s) => s.id)]);
      expect(events.rows).toHaveLength(8);
      expectFoundByKey('weft.claimed_events', events.scans);
      expect(events.scans.steps_pkey?.scans).toBeGreaterThan(0);
    }));

  it('weft.finish_steps finishes running steps through steps_pkey', () =>
    inTransaction(async () => {
      const claimed = await claim(take(ready, 8));
      const { rows, scans } = await measured<StepEvent>(c, FINISH_SQL, finishParams(claimed.map(success)));
      expect(rows.filter((r) => r.kind === 'finished').map((r) => r.state)).toEqual(Array(8).fill('complete'));
      expectFoundByKey('weft.finish_steps', scans);
      expect(scans.steps_pkey?.scans).toBeGreaterThan(0);
    }));

  it('a failure for good (weft.finish_steps, weft.fail_task, weft.cancel_children) ends the tasks through tasks_pkey', () =>
    inTransaction(async () => {
      const claimed = await claim(take(ready, 2));
      const { rows, scans } = await measured<StepEvent>(c, FINISH_SQL, finishParams(claimed.map((e) => failure(e, null))));
      expect(rows.filter((r) => r.kind === 'task_ended').map((r) => r.state)).toEqual(['error', 'error']);
      expectFoundByKey('the failing weft.finish_steps', scans);
      expect(scans.tasks_pkey?.scans).toBeGreaterThan(0);
    }));

  it('weft.release_steps gives steps back through steps_pkey', () =>
    inTransaction(async () => {
      const claimed = await claim(take(ready, 4));
      const { rows, scans } = await measured<StepEvent>(c, 'SELECT * FROM weft.release_steps($1, $2::uuid[], $3::int[], $4, $5, $6)', [
        WORKER,
        claimed.map((e) => e.step_id),
        claimed.map((e) => e.attempt),
        0,
        'test',
        false,
      ]);
      expect(rows.filter((r) => r.kind === 'finished').map((r) => r.state)).toEqual(Array(4).fill('enqueued'));
      expectFoundByKey('weft.release_steps', scans);
      expect(scans.steps_pkey?.scans).toBeGreaterThan(0);
    }));

  it('weft.cancel_task cancels a running task, and a parent with its child workflow, through their keys', () =>
    inTransaction(async () => {
      const [claimed] = await claim(take(ready, 1));
      const one = await measured<StepEvent>(c, 'SELECT * FROM weft.cancel_task($1, $2, $3, $4)', [claimed!.task_id, 'test', PID, null]);
      expect(one.rows.find((r) => r.kind === 'task_ended')?.state).toBe('cancelled');
      expectFoundByKey('weft.cancel_task', one.scans);

      // A parent whose workflow step holds a child: weft.cancel_children cancels the child through weft.cancel_task.
      const [step] = take(unstarted, 1);
      const [child] = take(heldTasks, 1);
      await c.query('SELECT * FROM weft.link_child($1, $2, $3, $4, $5)', [step!.id, step!.seq, child, PID, false]);
      const parent = await measured<StepEvent>(c, 'SELECT * FROM weft.cancel_task($1, $2, $3, $4)', [step!.task_id, 'test', PID, null]);
      expect(
        parent.rows
          .filter((r) => r.kind === 'task_ended')
          .map((r) => r.task_id)
          .sort(),
      ).toEqual([step!.task_id, child].sort());
      expectFoundByKey('weft.cancel_task of a parent (weft.cancel_children)', parent.scans);
    }));

  it('weft.retry_task reopens a failed task through its keys', () =>
    inTransaction(async () => {
      const claimed = await claim(take(ready, 1));
      await c.query(FINISH_SQL, finishParams(claimed.map((e) => failure(e, null))));
      const { rows, scans } = await measured<StepEvent>(c, 'SELECT * FROM weft.retry_task($1, $2, $3, $4, $5)', [
        claimed[0]!.task_id,
        null,
        'test',
        PID,
        false,
      ]);
      expect(rows.map((r) => r.state)).toEqual(['enqueued']);
      expectFoundByKey('weft.retry_task', scans);
    }));

  it('weft.complete_waiting finishes a waiting step through steps_pkey', () =>
    inTransaction(async () => {
      const [step] = take(waiting, 1);
      const items = [{ id: step!.id, result: { ok: true }, why: { reason: 'test' } }];
      const { rows, scans } = await measured<StepEvent>(c, 'SELECT * FROM weft.complete_waiting($1::jsonb, $2, $3)', [JSON.stringify(items), PID, false]);
      expect(rows.find((r) => r.kind === 'finished')?.state).toBe('complete');
      expectFoundByKey('weft.complete_waiting', scans);
      expect(scans.steps_pkey?.scans).toBeGreaterThan(0);
    }));

  it('weft.link_child and weft.fail_workflow_step find their workflow step through steps_pkey', () =>
    inTransaction(async () => {
      const [linked, failed] = take(unstarted, 2);
      const [child] = take(heldTasks, 1);
      const link = await measured(c, 'SELECT * FROM weft.link_child($1, $2, $3, $4, $5)', [linked!.id, linked!.seq, child, PID, false]);
      const { rows } = await c.query<{ child_task_id: string }>('SELECT child_task_id FROM weft.steps WHERE id = $1', [linked!.id]);
      expect(rows[0]?.child_task_id).toBe(child);
      expectFoundByKey('weft.link_child', link.scans);
      expect(link.scans.steps_pkey?.scans).toBeGreaterThan(0);

      const fail = await measured<StepEvent>(c, 'SELECT * FROM weft.fail_workflow_step($1, $2, $3, $4, $5, $6)', [
        failed!.id,
        failed!.seq,
        'ChildNotStarted',
        'test',
        PID,
        false,
      ]);
      expect(fail.rows.find((r) => r.kind === 'task_ended')?.state).toBe('error');
      expectFoundByKey('weft.fail_workflow_step', fail.scans);
    }));

  it('weft.dispatch_due_retries picks through steps_retry_due once, and moves the steps by id', () =>
    inTransaction(async () => {
      const claimed = await claim(take(ready, 4));
      await c.query(FINISH_SQL, finishParams(claimed.map((e) => failure(e, 0))));
      const { rows, scans } = await measured<StepEvent>(c, 'SELECT * FROM weft.dispatch_due_retries($1, $2, $3)', [PID, false, 100]);
      expect(rows.map((r) => r.step_id).sort()).toEqual(claimed.map((e) => e.step_id).sort());
      expectFoundByKey('weft.dispatch_due_retries', scans, { pick: 'steps_retry_due' });
    }));

  it('weft.redispatch_stale picks through steps_ready once, and moves the steps by id', () =>
    inTransaction(async () => {
      const { rows, scans } = await measured<StepEvent>(c, 'SELECT * FROM weft.redispatch_stale($1, $2, $3)', [PID, 0, 5]);
      expect(rows).toHaveLength(5);
      expectFoundByKey('weft.redispatch_stale', scans, { pick: 'steps_ready' });
    }));

  it('weft.requeue_lost_steps picks through steps_running once, and moves the steps by id', () =>
    inTransaction(async () => {
      const { rows, scans } = await measured<StepEvent>(c, 'SELECT * FROM weft.requeue_lost_steps($1, $2, $3, $4, $5)', [PID, 0, 3, false, 1_000]);
      expect(rows).toHaveLength(RUNNING);
      // It reads a few entries per lost step; a walk of steps_pkey would read every step.
      expectFoundByKey('weft.requeue_lost_steps', scans, { pick: 'steps_running', walk: READY });
      // The loss entries are read once: a few index scans per lost step, not one per pair of lost steps.
      expect(scans.steps_pkey?.scans, JSON.stringify(scans)).toBeLessThan(5 * RUNNING);
    }));

  it('weft.requeue_lost_steps moves at most p_limit steps a call, the rest in the next', () =>
    inTransaction(async () => {
      const first = await c.query<StepEvent>('SELECT * FROM weft.requeue_lost_steps($1, $2, $3, $4, $5)', [PID, 0, 3, false, 50]);
      expect(first.rows).toHaveLength(50);
      const rest = await c.query<StepEvent>('SELECT * FROM weft.requeue_lost_steps($1, $2, $3, $4, $5)', [PID, 0, 3, false, 1_000]);
      expect(rest.rows).toHaveLength(RUNNING - 50);
      expect(new Set([...first.rows, ...rest.rows].map((r) => r.step_id)).size).toBe(RUNNING);
    }));

  it('weft.start_due_tasks picks through tasks_start_due once, and starts the tasks by id', () =>
    inTransaction(async () => {
      await c.query(`UPDATE weft.tasks SET run_at = clock_timestamp() - interval '1 second' WHERE id = $1`, [delayedTask]);
      const { rows, scans } = await measured<StepEvent>(c, 'SELECT * FROM weft.start_due_tasks($1, $2, $3)', [PID, false, 10]);
      expect(rows.map((r) => r.task_id)).toEqual([delayedTask]);
      expectFoundByKey('weft.start_due_tasks', scans, { pick: 'tasks_start_due' });
    }));
});

/**
 * A connection plans a statement once and keeps the plan. The task view (every long-poll's answer) and a waiter's
 * state read were prepared statements: planned on a new database, their plans read weft.tasks and weft.steps whole
 * (Seq Scan, Hash Join), and went on doing so however large the tables grew. As functions with the step boundary's
 * planner settings they read one task by its keys, also on a connection that first ran them on a small table.
 */
describe('the task view, a state read and a history, on a connection that first ran them while the tables were small', () => {
  let tdb: TestDatabase;
  let early: pg.PoolClient;
  let first: string;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    await registerTemplate(tdb.db, ONE);
    const batch = (n: number): NewBatchTask[] =>
      Array.from({ length: n }, (_, k) => ({ item: k, namespace: NS, name: 'one', version: ONE.version, context: {}, steps: initialSteps(ONE) }));
    first = (await createTasks(tdb.db, batch(1), PID, 'wake')).outcomes[0]!.taskId;
    early = await tdb.db.acquire();
    // More runs than PostgreSQL's five custom plans, so a cached generic plan is what runs afterwards.
    for (let i = 0; i < 8; i++) {
      await early.query('SELECT weft.task_view($1, true) AS view', [first]);
      await early.query('SELECT weft.task_state($1) AS state', [first]);
      await early.query('SELECT weft.task_history($1, NULL, 100) AS value', [first]);
    }
    for (let i = 0; i < 3; i++) await createTasks(tdb.db, batch(500), PID, 'wake');
  });
  afterAll(async () => {
    early?.release();
    await tdb?.drop();
  });

  const TABLE_SCANS_SQL = `SELECT coalesce(pg_stat_get_xact_numscans('weft.tasks'::regclass), 0)::int AS tasks,
                                  coalesce(pg_stat_get_xact_numscans('weft.steps'::regclass), 0)::int AS steps`;
  /** Sequential scans of the audit tables, and entries read from their primary keys. */
  const AUDIT_SCANS_SQL = `SELECT coalesce(pg_stat_get_xact_numscans('weft.step_transitions'::regclass), 0)::int AS step_seq,
                                  coalesce(pg_stat_get_xact_numscans('weft.task_transitions'::regclass), 0)::int AS task_seq,
                                  coalesce(pg_stat_get_xact_tuples_returned('weft.step_transitions_pkey'::regclass), 0)::int AS step_read`;

  it("weft.task_history reads one task's transitions through its steps, not the audit tables whole", async () => {
    await early.query('BEGIN');
    try {
      const before = (await early.query<{ step_seq: number; task_seq: number; step_read: number }>(AUDIT_SCANS_SQL)).rows[0]!;
      const { rows } = await early.query<{ value: string }>('SELECT weft.task_history($1, NULL, 100) AS value', [first]);
      const after = (await early.query<{ step_seq: number; task_seq: number; step_read: number }>(AUDIT_SCANS_SQL)).rows[0]!;
      const history = JSON.parse(rows[0]!.value) as Array<{ step: string | null; to: string }>;
      expect(history.filter((h) => h.step === null).map((h) => h.to)).toEqual(['pending', 'running']);
      expect(history.filter((h) => h.step === 'only').map((h) => h.to)).toEqual(['pending', 'enqueued']);
      expect({ step_seq: after.step_seq - before.step_seq, task_seq: after.task_seq - before.task_seq }, 'sequential scans').toEqual({
        step_seq: 0,
        task_seq: 0,
      });
      // The task's one step has two transitions; the table holds 3,002.
      expect(after.step_read - before.step_read, 'entries read from step_transitions_pkey').toBeLessThan(10);
    } finally {
      await early.query('ROLLBACK');
    }
  });

  it.each([
    ['weft.task_view', 'SELECT weft.task_view($1, true) AS value'],
    ['weft.task_state', 'SELECT weft.task_state($1) AS value'],
  ])('%s reads no table whole and walks no index', async (label, sql) => {
    await early.query('BEGIN');
    try {
      const tablesBefore = (await early.query<{ tasks: number; steps: number }>(TABLE_SCANS_SQL)).rows[0]!;
      const { rows, scans } = await measured<{ value: string }>(early, sql, [first]);
      const tablesAfter = (await early.query<{ tasks: number; steps: number }>(TABLE_SCANS_SQL)).rows[0]!;
      expect(rows[0]!.value).toContain(label === 'weft.task_view' ? `"id" : "${first}"` : 'running');
      expect({ tasks: tablesAfter.tasks - tablesBefore.tasks, steps: tablesAfter.steps - tablesBefore.steps }, `${label}: sequential scans`).toEqual({
        tasks: 0,
        steps: 0,
      });
      expectFoundByKey(label, scans);
      expect(scans.tasks_pkey?.scans, `${label} scanned ${JSON.stringify(scans)}`).toBe(1);
    } finally {
      await early.query('ROLLBACK');
    }
  });
});
