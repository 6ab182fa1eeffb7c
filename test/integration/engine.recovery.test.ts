import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Backend, type Engine } from '../support/engine.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { packageRoot } from '../../src/shared/paths.js';
import { AMQP_URL } from '../support/urls.js';

const root = packageRoot();
const crashTemplate = parseTemplate(
  `namespace: t_crash
name: slow
version: 1.0.0
steps:
  - { name: only, handler: crash.slow, retry: { max_attempts: 3, backoff: fixed, base_ms: 10, max_ms: 10 } }
`,
  'slow.yaml',
);
const drainTemplate = parseTemplate(
  `namespace: t_crash
name: one_second
version: 1.0.0
steps:
  - { name: only, handler: crash.one_second }
`,
  'one_second.yaml',
);
const sleepTemplate = parseTemplate(
  `namespace: t_restart
name: chain
version: 1.0.0
steps:
  - { name: a, handler: test.sleep }
  - { name: b, handler: test.sleep, depends_on: [a] }
  - { name: c, handler: test.sleep, depends_on: [b] }
`,
  'chain.yaml',
);

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each<Backend>(['pg', 'rabbitmq'])('a worker killed with SIGKILL in the middle of a step (%s)', (backend) => {
  let tdb: TestDatabase;
  let engine: Engine;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({
      backend,
      url: tdb.url,
      workers: 0,
      templates: [crashTemplate, drainTemplate],
      handlers: (await import('./fixtures/crash-handlers/slow.js')).handlers as never,
      namespaces: ['t_crash'],
      leaseMs: 1_500,
    });
  });
  afterEach(() => {
    // Stop the child by pid if the test did not get to (or failed before) killing it.
    if (child?.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  });
  afterAll(async () => {
    await engine?.stop();
    await tdb?.drop();
  });

  async function startChildWorker(): Promise<{ child: ChildProcess; stderr: () => string }> {
    const proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'src/cli/main.ts'),
        'worker',
        '--runtime',
        'native',
        '--handlers',
        join(root, 'test/integration/fixtures/crash-handlers'),
        '--namespaces',
        't_crash',
        '--concurrency',
        '1',
      ],
      {
        cwd: root,
        env: {
          ...process.env,
          WEFT_DATABASE_URL: tdb.url,
          WEFT_MESSAGING: backend,
          WEFT_AMQP_URL: AMQP_URL,
          WEFT_QUEUE_PREFIX: engine.queuePrefix,
          WEFT_LEASE_MS: '1500',
          WEFT_LOG_LEVEL: 'info',
          WEFT_LOG_FORMAT: 'json',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    proc.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    await until('the child worker to start', async () => err.includes('worker started') || (proc.exitCode !== null && Promise.reject(new Error(err))));
    return { child: proc, stderr: () => err };
  }

  it('SIGTERM lets the step in flight finish and report, then the worker exits 0', async () => {
    const started = await startChildWorker();
    child = started.child;
    const { id } = await engine.orchestrators[0]!.createTask({ namespace: 't_crash', name: 'one_second', context: {} });
    await until('the child to claim the step', async () => {
      const { rows } = await engine.db.query(`SELECT 1 FROM weft.steps WHERE task_id = $1 AND state = 'running'`, [id]);
      return rows.length > 0;
    });
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    process.kill(child.pid!, 'SIGTERM');
    expect(await exited).toBe(0);
    expect(await engine.orchestrators[0]!.waitForTask(id, 10_000)).toBe(true);
    const { rows } = await engine.db.query(`SELECT state, attempts, result FROM weft.steps WHERE task_id = $1`, [id]);
    expect(rows[0]).toMatchObject({ state: 'complete', attempts: 1, result: { pid: child.pid } });
    expect(started.stderr()).toContain('worker stopped');
  });

  it('the step completes on another worker after its lease expires', async () => {
    const started = await startChildWorker();
    child = started.child;
    const stderr = () => started.stderr();
    const { id } = await engine.orchestrators[0]!.createTask({ namespace: 't_crash', name: 'slow', context: {} });
    const running = await until('the child to claim the step', async () => {
      const { rows } = await engine.db.query(`SELECT worker_id FROM weft.steps WHERE task_id = $1 AND state = 'running'`, [id]);
      return rows[0]?.worker_id as string | undefined;
    });
    expect(running).toMatch(/^worker-native-/);
    expect(child.exitCode, `the child worker exited early: ${stderr()}`).toBeNull();
    process.kill(child.pid!, 'SIGKILL');
    await new Promise((r) => child!.once('exit', r));

    await engine.addWorker();
    expect(await engine.orchestrators[0]!.waitForTask(id, 30_000)).toBe(true);
    const { rows } = await engine.db.query(
      `SELECT s.state, s.attempts, s.failures, s.losses, s.result, s.worker_id,
              (SELECT json_agg(json_build_array(t.from_state, t.to_state, t.metadata->>'reason') ORDER BY t.seq)
                 FROM weft.step_transitions t WHERE t.step_id = s.id) AS moves
         FROM weft.steps s WHERE s.task_id = $1`,
      [id],
    );
    const step = rows[0];
    expect(step.state).toBe('complete');
    expect(step.attempts).toBe(2);
    // A lost worker is not a failed attempt: the retry budget is untouched.
    expect(step.failures).toBe(0);
    expect(step.losses).toBe(1);
    expect(step.result.pid).toBe(process.pid); // the second attempt ran in this process
    expect(step.worker_id).not.toBe(running);
    expect(step.moves).toContainEqual(['running', 'enqueued', 'worker lost']);
    expect(step.moves.map((m: string[]) => m[1])).toEqual(['pending', 'enqueued', 'running', 'enqueued', 'running', 'complete']);
  });
});

// RabbitMQ stopped and killed in the middle of a run is the fault suite's (npm run test:faults): it
// does it to a private RabbitMQ node, never to the shared broker the rest of this suite uses at the
// same time.

describe('every database connection killed in the middle of a run (pg)', () => {
  let tdb: TestDatabase;
  let engine: Engine;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({
      backend: 'pg',
      url: tdb.url,
      workers: 2,
      templates: [sleepTemplate],
      handlers: {
        'test.sleep': async () => {
          await new Promise((r) => setTimeout(r, 100));
          return { ok: true };
        },
      } as never,
      namespaces: ['t_restart'],
    });
  });
  afterAll(async () => {
    await engine?.stop();
    await tdb?.drop();
  });

  it('every task still completes, each step once', async () => {
    const orch = engine.orchestrators[0]!;
    const ids = await Promise.all(Array.from({ length: 20 }, async () => (await orch.createTask({ namespace: 't_restart', name: 'chain', context: {} })).id));
    await new Promise((r) => setTimeout(r, 150));
    const { rows: killed } = await tdb.db.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
    );
    expect(killed.length).toBeGreaterThan(5);
    expect(await Promise.all(ids.map((id) => orch.waitForTask(id, 90_000)))).toEqual(Array(20).fill(true));
    const { rows: states } = await tdb.db.query(`SELECT state, count(*)::int AS n FROM weft.tasks GROUP BY state`);
    expect(states).toEqual([{ state: 'complete', n: 20 }]);
    const { rows } = await tdb.db.query(
      `SELECT count(*)::int AS n, count(DISTINCT step_id)::int AS steps FROM weft.step_transitions WHERE to_state = 'complete'`,
    );
    expect(rows[0]).toEqual({ n: 60, steps: 60 });
  }, 120_000);
});
