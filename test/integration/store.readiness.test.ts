/**
 * The SQL that releases steps (weft.create_task and weft.finish_steps, with
 * their `pending_parents` countdown) against the rule it implements:
 * `readySteps` in src/core/readiness.ts. Random DAGs are run step by step
 * through the real statements, finishing a random subset of what is running
 * each round; after every statement the steps the database has enqueued must
 * be exactly the steps the rule calls ready, and the task must be complete
 * exactly when `executionStatus` (src/core/status.ts) says all_complete.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { createTask } from '../../src/store/tasks.js';
import { claimIds } from '../../src/store/claim.js';
import { finishSteps } from '../../src/store/finish.js';
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
    attempts: r.attempt,
    max_attempts: 3,
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
