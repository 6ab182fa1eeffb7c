/**
 * The SQL that releases steps (weft.create_task and weft.finish_steps, with
 * their `pending_parents` countdown, weft.dispatch_due_retries, weft.cancel_task
 * and weft.retry_task) against the rules it implements: `readySteps` in
 * src/core/readiness.ts and `executionStatus` in src/core/status.ts. Random DAGs
 * are run through the real statements; after every statement the steps the
 * database has released (enqueued, or claimed on release) must be exactly the
 * steps the rule calls ready, and the task's state must be what the status
 * rule says.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { createTask } from '../../src/store/tasks.js';
import { claimIds } from '../../src/store/claim.js';
import { finishSteps, type FinishItem } from '../../src/store/finish.js';
import { dispatchDueRetries } from '../../src/store/dispatch.js';
import { cancelTask, retryTask } from '../../src/store/control.js';
import { registerTemplate } from '../../src/store/templates.js';
import { readySteps, type StepSnapshot } from '../../src/core/readiness.js';
import { executionStatus } from '../../src/core/status.js';
import { initialSteps } from '../../src/core/plan.js';
import type { StepState } from '../../src/core/states.js';
import type { TemplateDefinition } from '../../src/core/template/types.js';
import { validateTemplateObject } from '../../src/core/template/parse.js';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

/** Step i may only depend on steps 0..i-1: acyclic by construction. */
const dagArb = fc
  .integer({ min: 1, max: 12 })
  .chain((n) =>
    fc.tuple(
      ...Array.from({ length: n }, (_, i) => (i === 0 ? fc.constant<number[]>([]) : fc.uniqueArray(fc.integer({ min: 0, max: i - 1 }), { maxLength: 3 }))),
    ),
  );

let templateNo = 0;
function templateOf(dag: number[][]): TemplateDefinition {
  return validateTemplateObject(
    {
      namespace: 'readiness',
      name: `dag_${templateNo++}`,
      version: '1.0.0',
      steps: dag.map((parents, i) => ({ name: `s${i}`, handler: 'noop', depends_on: parents.map((p) => `s${p}`) })),
    },
    'generated',
  );
}

interface Row {
  id: string;
  name: string;
  state: StepState;
  attempt: number;
  parents: string[];
}

async function stepsOf(taskId: string): Promise<Row[]> {
  const { rows } = await tdb.db.query<Row>(
    `SELECT s.id, s.name, s.state, s.attempts AS attempt,
            coalesce(array_agg(p.name ORDER BY p.name) FILTER (WHERE p.name IS NOT NULL), '{}') AS parents
       FROM weft.steps s
       LEFT JOIN weft.step_edges e ON e.to_step = s.id
       LEFT JOIN weft.steps p ON p.id = e.from_step
      WHERE s.task_id = $1
      GROUP BY s.id ORDER BY s.name`,
    [taskId],
  );
  return rows;
}

/**
 * The database's steps as the rules see them: an enqueued step is one the
 * rule must call ready, and the task is complete exactly when the status rule
 * says all_complete.
 */
async function expectTheRules(taskId: string, rows: Row[]): Promise<void> {
  const snapshot: StepSnapshot[] = rows.map((r) => ({
    name: r.name,
    state: r.state === 'enqueued' ? 'pending' : r.state,
    run_after: null,
    parents: r.parents,
  }));
  const enqueued = rows.filter((r) => r.state === 'enqueued').map((r) => r.name);
  expect(enqueued.sort()).toEqual(readySteps(snapshot, Date.now()).sort());
  const { rows: task } = await tdb.db.query<{ state: string }>('SELECT state FROM weft.tasks WHERE id = $1', [taskId]);
  expect(task[0]!.state === 'complete').toBe(executionStatus(snapshot, Date.now()) === 'all_complete');
}

describe('the SQL releases exactly the steps readySteps calls ready', () => {
  it('random DAGs, finished in random batches, one round at a time', async () => {
    await fc.assert(
      fc.asyncProperty(dagArb, fc.gen(), async (dag, g) => {
        const template = templateOf(dag);
        await registerTemplate(tdb.db, template);
        const { taskId } = await createTask(
          tdb.db,
          { namespace: template.namespace, name: template.name, version: template.version, context: {}, steps: initialSteps(template) },
          'test-readiness',
          'wake',
        );
        for (let round = 0; ; round++) {
          expect(round).toBeLessThanOrEqual(dag.length); // every round completes at least one step
          let rows = await stepsOf(taskId);
          await expectTheRules(taskId, rows);
          const ready = rows.filter((r) => r.state === 'enqueued');
          if (ready.length === 0) break;
          const claimed = (
            await claimIds(
              tdb.db,
              'w',
              ready.map((r) => r.id),
            )
          ).claimed;
          expect(claimed.map((c) => c.id).sort()).toEqual(ready.map((r) => r.id).sort());
          // Finish a random non-empty subset; the rest stay running into the next round.
          const done = claimed.filter((_, i) => i === 0 || g(fc.boolean));
          await finishSteps(
            tdb.db,
            'w',
            done.map((c) => ({ id: c.id, attempt: c.attempt, ok: true, resultJson: '1', durationMs: 1 })),
            { queues: [], room: 0, claimQueued: false, outbox: false },
          );
          rows = await stepsOf(taskId);
          await expectTheRules(taskId, rows);
          // Finish what is still running, so the next round starts from enqueued steps only.
          const running = claimed.filter((c) => !done.includes(c));
          if (running.length > 0) {
            await finishSteps(
              tdb.db,
              'w',
              running.map((c) => ({ id: c.id, attempt: c.attempt, ok: true, resultJson: '1', durationMs: 1 })),
              { queues: [], room: 0, claimQueued: false, outbox: false },
            );
          }
        }
        const rows = await stepsOf(taskId);
        expect(rows.every((r) => r.state === 'complete')).toBe(true);
        const { rows: task } = await tdb.db.query<{ state: string }>('SELECT state FROM weft.tasks WHERE id = $1', [taskId]);
        expect(task[0]!.state).toBe('complete');
      }),
      { numRuns: 60 },
    );
  });
});

interface RunRow extends Row {
  run_after: Date | null;
}

async function runRowsOf(taskId: string): Promise<RunRow[]> {
  const { rows } = await tdb.db.query<RunRow>(
    `SELECT s.id, s.name, s.state, s.attempts AS attempt, s.run_after,
            coalesce(array_agg(p.name ORDER BY p.name) FILTER (WHERE p.name IS NOT NULL), '{}') AS parents
       FROM weft.steps s
       LEFT JOIN weft.step_edges e ON e.to_step = s.id
       LEFT JOIN weft.steps p ON p.id = e.from_step
      WHERE s.task_id = $1
      GROUP BY s.id ORDER BY s.name`,
    [taskId],
  );
  return rows;
}

/** What the status rule says the task's state is, for each state the SQL gives a task. */
const TASK_STATE_OF: Record<string, string> = {
  all_complete: 'complete',
  blocked_by_failures: 'error',
  cancelled: 'cancelled',
  has_ready_steps: 'running',
  processing: 'running',
  waiting: 'running',
};

/**
 * After a statement: the steps the database released (enqueued, or claimed on
 * release by the statement: `claimedNow`) are what readySteps calls ready when
 * they are seen as pending, and the task's state is executionStatus's.
 */
async function expectTheWholeRules(taskId: string, claimedNow: ReadonlySet<string>, context: string): Promise<RunRow[]> {
  const rows = await runRowsOf(taskId);
  const released = rows.filter((r) => r.state === 'enqueued' || claimedNow.has(r.id));
  const snapshot: StepSnapshot[] = rows.map((r) => ({
    name: r.name,
    state: released.includes(r) ? 'pending' : r.state,
    run_after: r.run_after ? r.run_after.getTime() : null,
    parents: r.parents,
  }));
  const now = Date.now();
  expect(released.map((r) => r.name).sort(), context).toEqual(readySteps(snapshot, now).sort());
  const { rows: task } = await tdb.db.query<{ state: string }>('SELECT state FROM weft.tasks WHERE id = $1', [taskId]);
  expect(task[0]!.state, context).toBe(TASK_STATE_OF[executionStatus(snapshot, now)]);
  return rows;
}

type Outcome = 'success' | 'retry_now' | 'retry_later' | 'fail';
const outcomeArb = fc.constantFrom<Outcome>('success', 'success', 'success', 'success', 'retry_now', 'retry_later', 'fail');
const ERROR = { language: 'typescript', class: 'Boom', message: 'no', backtrace: [], permanent: false, kind: 'raised' };

function itemOf(step: { id: string; attempt: number }, outcome: Outcome): FinishItem {
  if (outcome === 'success') return { id: step.id, attempt: step.attempt, ok: true, resultJson: '1', durationMs: 1 };
  return {
    id: step.id,
    attempt: step.attempt,
    ok: false,
    error: ERROR,
    retryMs: outcome === 'retry_now' ? 0 : outcome === 'retry_later' ? 3_600_000 : null,
    reason: outcome === 'fail' ? 'out of attempts' : undefined,
    durationMs: 1,
  };
}

describe('the SQL follows readySteps and executionStatus through failures, retries, claims on release, cancel and retry', () => {
  it('random DAGs and random outcomes, one statement at a time', async () => {
    await fc.assert(
      fc.asyncProperty(dagArb, fc.gen(), async (dag, g) => {
        const template = templateOf(dag);
        await registerTemplate(tdb.db, template);
        const { taskId } = await createTask(
          tdb.db,
          { namespace: template.namespace, name: template.name, version: template.version, context: {}, steps: initialSteps(template) },
          'test-readiness',
          'wake',
        );
        const queue = `step.${template.namespace}.native`;
        const trail: string[] = ['created'];
        const context = () => `${JSON.stringify(dag)}: ${trail.join(' → ')}`;
        let rows = await expectTheWholeRules(taskId, new Set(), context());
        // Runs this test holds as the worker `w`: id → attempt.
        const held = new Map<string, number>();
        let retries = 0;
        for (let round = 0; round < 12 * dag.length + 20; round++) {
          const { rows: task } = await tdb.db.query<{ state: string }>('SELECT state FROM weft.tasks WHERE id = $1', [taskId]);
          const state = task[0]!.state;
          if (state === 'complete') break;
          // A cancel ends the runs it interrupts; a failed task's other runs go on until they finish.
          for (const id of held.keys()) if (rows.find((r) => r.id === id)?.state !== 'running') held.delete(id);
          if (state === 'error' || state === 'cancelled') {
            if (held.size === 0 && (retries >= 2 || !g(fc.boolean))) break;
            if (held.size > 0) {
              // Runs still going when their task failed finish, and are recorded, but release nothing.
              const runs = [...held].map(([id, attempt]) => ({ id, attempt }));
              await finishSteps(
                tdb.db,
                'w',
                runs.map((s) => itemOf(s, 'success')),
                { queues: [queue], room: 3, claimQueued: false, outbox: false },
              );
              held.clear();
              trail.push('finish the runs of an ended task');
              rows = await expectTheWholeRules(taskId, new Set(), context());
              continue;
            }
            retries++;
            await retryTask(tdb.db, taskId, { by: 'fuzz' });
            trail.push('retry_task');
            rows = await expectTheWholeRules(taskId, new Set(), context());
            continue;
          }
          if (g(fc.integer, { min: 0, max: 19 }) === 0) {
            await cancelTask(tdb.db, taskId, 'fuzz');
            trail.push('cancel_task');
            rows = await expectTheWholeRules(taskId, new Set(), context());
            continue;
          }
          const ready = rows.filter((r) => r.state === 'enqueued');
          if (ready.length > 0) {
            const claimed = (
              await claimIds(
                tdb.db,
                'w',
                ready.map((r) => r.id),
              )
            ).claimed;
            for (const c of claimed) held.set(c.id, c.attempt);
          }
          if (held.size === 0) {
            // Nothing ready and nothing running: only retries that are not due yet. Make them due.
            const waiting = rows.filter((r) => r.state === 'waiting_retry');
            expect(waiting.length, context()).toBeGreaterThan(0);
            await tdb.db.query(`UPDATE weft.steps SET run_after = clock_timestamp() WHERE task_id = $1 AND state = 'waiting_retry'`, [taskId]);
            await dispatchDueRetries(tdb.db, 'test', 'wake');
            trail.push('backoff elapsed');
            rows = await expectTheWholeRules(taskId, new Set(), context());
            continue;
          }
          // Finish a random non-empty subset of the runs held, each with a random outcome, leaving a random room for claims on release.
          const runs = [...held].map(([id, attempt]) => ({ id, attempt }));
          const done = runs.filter((_, i) => i === 0 || g(fc.boolean));
          const outcomes = done.map(() => g(() => outcomeArb));
          const room = g(fc.integer, { min: 0, max: 3 });
          const outcome = await finishSteps(
            tdb.db,
            'w',
            done.map((s, i) => itemOf(s, outcomes[i]!)),
            { queues: [queue], room, claimQueued: false, outbox: false },
          );
          trail.push(`finish ${done.map((s, i) => `${rows.find((r) => r.id === s.id)?.name}:${outcomes[i]}`).join(',')} room ${room}`);
          for (const s of done) held.delete(s.id);
          for (const c of outcome.claimed) held.set(c.id, c.attempt);
          // Retries whose backoff has elapsed: the rule calls them ready, and the orchestrator's retry sweep enqueues exactly those.
          rows = await runRowsOf(taskId);
          const claimedNow = new Set(outcome.claimed.map((c) => c.id));
          const dueNow = readySteps(
            rows.map((r) => ({
              name: r.name,
              state: r.state === 'enqueued' || claimedNow.has(r.id) ? 'pending' : r.state,
              run_after: r.run_after ? r.run_after.getTime() : null,
              parents: r.parents,
            })),
            Date.now(),
          ).filter((name) => rows.find((r) => r.name === name)!.state === 'waiting_retry');
          const swept = await dispatchDueRetries(tdb.db, 'test', 'wake');
          if (swept.dispatch.steps.length > 0) trail.push('dispatch_due_retries');
          expect(swept.dispatch.steps.map((s) => s.name).sort(), context()).toEqual(dueNow.sort());
          rows = await expectTheWholeRules(taskId, claimedNow, context());
        }
      }),
      { numRuns: 40 },
    );
  });
});
