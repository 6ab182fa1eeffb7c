/**
 * Faults of the worker's own machinery must not use a step's retry budget
 * (issue 9): a runtime that refuses calls (its circuit breaker is open), and
 * a claim whose answer never reached the worker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Backend, type Engine } from '../support/engine.js';
import { NativeRunner } from '../../src/worker/native-runner.js';
import type { RunOutcome, StepRunner } from '../../src/worker/runner.js';
import type { ClaimedStep } from '../../src/store/events.js';
import { claimQueued } from '../../src/store/claim.js';
import { processId } from '../../src/shared/ids.js';
import { getTaskView } from '../../src/store/tasks.js';
import { openDatabase } from '../../src/store/database.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { Worker } from '../../src/worker/worker.js';
import { proxiedDatabase } from '../support/tcp-proxy.js';
import { capturingLogger } from '../support/log.js';

/** A native runner whose runtime refuses its first `n` calls, as an open breaker does. */
class RefusingRunner implements StepRunner {
  readonly runtime = 'native';
  refused = 0;
  constructor(
    private readonly inner: StepRunner,
    private n: number,
  ) {}
  handlerKeys(): string[] {
    return this.inner.handlerKeys();
  }
  async run(step: ClaimedStep): Promise<RunOutcome> {
    if (this.n > 0) {
      this.n--;
      this.refused++;
      return {
        ok: false,
        error: {
          language: 'python',
          class: 'CircuitOpen',
          message: 'the python runtime is unavailable: its circuit breaker is open (last failure: HandlerTimeout after 50 ms)',
          backtrace: [],
          permanent: false,
          kind: 'circuit_open',
        },
      };
    }
    return this.inner.run(step);
  }
  isBroken(): boolean {
    return false;
  }
  async close(): Promise<void> {}
}

describe.each<Backend>(['pg', 'rabbitmq'])('faults that use no attempt (%s)', (backend) => {
  let tdb: TestDatabase;
  let engine: Engine;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend, url: tdb.url, workers: 0, namespaces: ['e2e_linear'] });
  });
  afterAll(async () => {
    await engine?.stop();
    await tdb?.drop();
  });

  it('a step its runtime refuses (breaker open) goes back to the queue and runs later, its retry budget untouched', async () => {
    const runner = new RefusingRunner(new NativeRunner(engine.registry), 4);
    const worker = await engine.addWorker({ runner });
    try {
      const view = await engine.run('e2e_linear', 'mathematical_sequence', { even_number: 2 });
      expect(view.state).toBe('complete');
      expect(runner.refused).toBe(4);
      // Four refusals with max_attempts 3 would have failed the task if they counted.
      expect(view.steps.every((s) => s.state === 'complete')).toBe(true);
      const { rows } = await engine.db.query<{ failures: number; losses: number; refusals: number }>(
        `SELECT s.failures, s.losses,
                (SELECT count(*)::int FROM weft.step_transitions t
                  WHERE t.step_id = s.id AND t.from_state = 'running' AND t.to_state = 'waiting_retry'
                    AND t.metadata->>'reason' LIKE 'the native runtime refused the call (circuit_open: %') AS refusals
           FROM weft.steps s WHERE s.task_id = $1`,
        [view.id],
      );
      expect(rows.every((r) => r.failures === 0 && r.losses === 0)).toBe(true);
      expect(rows.reduce((n, r) => n + r.refusals, 0)).toBe(4);
      expect(worker.counts.given_back).toBe(4);
    } finally {
      await worker.stop(5_000);
      engine.workers.splice(engine.workers.indexOf(worker), 1);
    }
  });

  it("a step claimed in a live worker's name that it never started is given back at once, not held by its lease", async () => {
    const workerId = processId('orphans');
    const orchestrator = engine.orchestrators[0]!;
    const { id } = await orchestrator.createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 } });
    // The claim commits, but its answer never reaches the worker (as when the connection drops right after COMMIT).
    let lost = 0;
    for (let i = 0; i < 50 && lost === 0; i++) {
      lost = (await claimQueued(engine.db, workerId, ['step.e2e_linear.native'], 1)).claimed.length;
      if (lost === 0) await new Promise((r) => setTimeout(r, 50)); // the broker backend enqueues it after its publish
    }
    expect(lost).toBe(1);
    const worker = await engine.addWorker({ workerId, orphanCheckMs: 300 });
    try {
      // Its lease is 30 s and the worker heartbeats: only the worker's own check can give the step back this soon.
      expect(await orchestrator.waitForTask(id, 15_000)).toBe(true);
      const view = (await getTaskView(engine.db, id))!;
      expect(view.state).toBe('complete');
      const first = view.steps.find((s) => s.name === 'linear_step_1')!;
      expect(first).toMatchObject({ attempts: 2, failures: 0, losses: 0 });
      const { rows } = await engine.db.query<{ from_state: string; to_state: string; reason: string | null }>(
        `SELECT t.from_state, t.to_state, t.metadata->>'reason' AS reason FROM weft.step_transitions t
          WHERE t.step_id = $1 ORDER BY t.seq`,
        [first.id],
      );
      expect(rows.map((r) => `${r.from_state}→${r.to_state}`)).toEqual([
        'null→pending',
        'pending→enqueued',
        'enqueued→running',
        'running→enqueued',
        'enqueued→running',
        'running→complete',
      ]);
      expect(rows[3]!.reason).toContain('never started it');
    } finally {
      await worker.stop(5_000);
      engine.workers.splice(engine.workers.indexOf(worker), 1);
    }
  });
});

describe('a finish whose COMMIT succeeded but whose answer was lost', () => {
  let tdb: TestDatabase;
  let engine: Engine;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend: 'pg', url: tdb.url, workers: 0, namespaces: ['e2e_linear'] });
  });
  afterAll(async () => {
    await engine?.stop();
    await tdb?.drop();
  });

  it('is written again, found already recorded by this very attempt, and neither counted nor logged as lost', async () => {
    const { proxy: cutter, url } = await proxiedDatabase(tdb.url);
    const { log, lines } = capturingLogger();
    const db = await openDatabase({ url, log, max: 4 });
    const worker = new Worker({
      db,
      bus: new PgMessageBus(db, log, { pollIntervalMs: 200 }),
      log,
      runner: new NativeRunner(engine.registry),
      workerId: processId('lost-answer'),
      namespaces: ['e2e_linear'],
      orphanCheckMs: 300,
    });
    await worker.start();
    try {
      // The first finish statement commits, and its answer never reaches the worker.
      const cut = cutter.cutAnswerTo('weft_finish_steps');
      const view = await engine.run('e2e_linear', 'mathematical_sequence', { even_number: 2 });
      await cut;
      expect(view.state).toBe('complete');
      expect(view.steps.map((s) => s.result)).toEqual([4, 16, 256, 65536]);
      expect(worker.counts).toMatchObject({ lost: 0, succeeded: 4 });
      const said = lines.map((l) => l.msg);
      expect(said).toContain("the step's outcome was already recorded by this worker (the answer to its first write was lost with the connection)");
      expect(said.filter((m) => m.includes('result discarded'))).toEqual([]);
    } finally {
      await worker.stop(5_000);
      await db.close();
      await cutter.close();
    }
  });
});
