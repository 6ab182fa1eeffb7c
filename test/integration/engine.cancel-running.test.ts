/**
 * Cancelling a task whose Python step is running (issue: cancel a running
 * foreign step): the worker's runner interrupts the handler through the
 * bridge, the step ends `cancelled` long before its own timeout, and the
 * same worker goes on to run the next task at once.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { createRunner } from '../../src/worker/runners.js';
import type { StepRunner } from '../../src/worker/runner.js';
import type { Worker } from '../../src/worker/worker.js';
import { getTaskView, type TaskView } from '../../src/store/tasks.js';
import { silentLogger } from '../../src/shared/logger.js';
import { packageRoot } from '../../src/shared/paths.js';

const FIXTURES = join(packageRoot(), 'test/integration/fixtures/cancel-handlers/python');
const STEP_TIMEOUT_MS = 120_000;
const template = (name: string, steps: string) => parseTemplate(`namespace: t_cancelrun\nname: ${name}\nversion: 1.0.0\nsteps:\n${steps}`, `${name}.yaml`);
const HANDLERS = { naps: 'cancelrun.sleep_loop', 'one long time.sleep': 'cancelrun.sleep_long' };
const templates = [
  ...Object.values(HANDLERS).map((handler) =>
    template(
      handler.replace('cancelrun.', ''),
      `  - { name: nap, handler: ${handler}, runtime: python, timeout_ms: ${STEP_TIMEOUT_MS} }\n` +
        '  - { name: after, handler: cancelrun.quick, runtime: python, depends_on: [nap] }',
    ),
  ),
  template('quick', '  - { name: double, handler: cancelrun.quick, runtime: python }'),
];

async function until<T>(what: string, read: () => Promise<T> | T, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('cancelling a task while its Python step runs', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  let runner: StepRunner;
  let worker: Worker;
  const files = { started: join(tmpdir(), `weft-cancelrun-started-${process.pid}`), seen: join(tmpdir(), `weft-cancelrun-seen-${process.pid}`) };

  beforeAll(async () => {
    for (const f of Object.values(files)) rmSync(f, { force: true });
    tdb = await createTestDatabase();
    engine = await startEngine({ backend: 'pg', url: tdb.url, templates, namespaces: ['t_cancelrun'] });
    runner = await createRunner('python', FIXTURES, silentLogger());
    worker = await engine.addWorker({ runner });
  });
  afterAll(async () => {
    await engine?.stop();
    await runner?.close();
    await tdb?.drop();
    for (const f of Object.values(files)) rmSync(f, { force: true });
  });

  it.each(Object.entries(HANDLERS))(
    'a handler in %s: interrupted, the step ends cancelled well before its timeout, and the worker runs the next task',
    async (_what, handler) => {
      for (const f of Object.values(files)) rmSync(f, { force: true });
      const orchestrator = engine.orchestrators[0]!;
      const events: Array<{ name: string; state: string }> = [];
      const onStep = (e: { name: string; state: string }) => events.push(e);
      worker.on('step', onStep);
      let broken = false;
      worker.on('broken', () => (broken = true));

      const { id } = await orchestrator.createTask({ namespace: 't_cancelrun', name: handler.replace('cancelrun.', ''), context: files });
      await until('the python handler to start', () => existsSync(files.started), Boolean);

      const t0 = Date.now();
      expect(await orchestrator.cancelTask(id, 'test:operator')).toEqual({ state: 'cancelled', interrupted: 1 });
      // The worker heard the cancel, the bridge interrupted the handler, and the run settled.
      await until(
        'the worker to let go of the step',
        () => worker.inFlight(),
        (n) => n === 0,
      );
      const settledMs = Date.now() - t0;
      expect(settledMs).toBeLessThan(STEP_TIMEOUT_MS / 10);
      expect(events).toContainEqual(expect.objectContaining({ name: 'nap', state: 'cancelled' }));
      // What the handler itself saw: weft.Cancelled, raised where it napped
      // (the run settled at the cancel; the interrupt lands a moment later).
      await until('the handler to be interrupted', () => existsSync(files.seen), Boolean);
      expect(readFileSync(files.seen, 'utf8')).toBe('Cancelled');

      const view = (await getTaskView(engine.db, id)) as TaskView;
      expect(view.state).toBe('cancelled');
      expect(view.steps.map((s) => [s.name, s.state])).toEqual([
        ['nap', 'cancelled'],
        ['after', 'cancelled'],
      ]);
      expect(view.steps[0]!.result ?? null).toBeNull();

      // The same worker runs the next task.
      const next = await engine.run('t_cancelrun', 'quick', { n: 21 }, 15_000);
      expect(next.state).toBe('complete');
      expect(next.steps[0]!.result).toEqual({ n: 42 });
      expect(runner.isBroken()).toBe(false);
      expect(broken).toBe(false);
      worker.off('step', onStep);
    },
  );
});
