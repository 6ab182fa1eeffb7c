/**
 * RabbitMQ: a process that commits a statement which enqueued steps, then dies
 * before it publishes their messages, leaves them in weft.outbox. The
 * orchestrator's outbox sweep publishes them (after a 1 s grace), so the task
 * goes on without waiting for the much later redispatch of unclaimed steps.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { results, startEngine, type Engine } from '../support/engine.js';
import { createTask, getTaskView } from '../../src/store/tasks.js';
import { initialSteps } from '../../src/core/plan.js';
import { loadTemplateFile } from '../../src/core/template/load.js';
import { packageRoot } from '../../src/shared/paths.js';

let tdb: TestDatabase;
let engine: Engine;

beforeAll(async () => {
  tdb = await createTestDatabase();
  engine = await startEngine({ backend: 'rabbitmq', url: tdb.url });
});
afterAll(async () => {
  await engine?.stop();
  await tdb?.drop();
});

describe('a crash between the commit and the RabbitMQ publish', () => {
  it('the outbox sweep publishes what was left behind; the step is not dispatched a second time', async () => {
    const linear = await loadTemplateFile(join(packageRoot(), 'templates', 'linear.yaml'));
    // The statement commits with its outbox row, and its process "dies": nothing is published.
    const { taskId } = await createTask(
      engine.db,
      { namespace: linear.namespace, name: linear.name, version: linear.version, context: { even_number: 6 }, steps: initialSteps(linear) },
      'crashed-before-publish',
      'outbox',
    );
    const { rows: left } = await engine.db.query<{ n: number }>('SELECT count(*)::int AS n FROM weft.outbox');
    expect(left[0]!.n).toBeGreaterThan(0);

    const ended = await engine.orchestrators[0]!.waitForTask(taskId, 20_000);
    expect(ended).toBe(true);
    const view = (await getTaskView(engine.db, taskId))!;
    expect(view.state).toBe('complete');
    expect(results(view).linear_step_4).toBe(2821109907456);

    // Published by the sweep, not rescued by the redispatch of unclaimed steps (an enqueued → enqueued transition).
    const { rows: redispatched } = await engine.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM weft.step_transitions WHERE task_id = $1 AND from_state = 'enqueued' AND to_state = 'enqueued'`,
      [taskId],
    );
    expect(redispatched[0]!.n).toBe(0);
    const { rows: after } = await engine.db.query<{ n: number }>('SELECT count(*)::int AS n FROM weft.outbox');
    expect(after[0]!.n).toBe(0);
  });
});
