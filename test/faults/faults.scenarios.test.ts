/**
 * `npm run test:faults` (issue 9): weft's guarantees under real faults.
 *
 * Real orchestrator and worker processes run a few hundred tasks (linear and
 * diamond templates with native TypeScript handlers, a linear one with Python
 * handlers) on a private PostgreSQL and a private RabbitMQ node, while the
 * suite kills workers and orchestrators, crashes PostgreSQL, terminates its
 * connections, restarts RabbitMQ, stops a worker mid-step, runs a handler
 * that kills its own worker, and kills the orchestrator and a worker while
 * steps sleep and wait for signals and a schedule fires every second. After each load drains, the database must show:
 * every task ended as expected with the right answer, no step completed twice,
 * every transition legal, no handler attempt used by a fault
 * (docs/operations.md, "What a fault costs").
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRoot, PrivatePostgres, PrivateRabbit, removeRoot, until, alive } from './cluster.js';
import { Deployment, everyProcess, kill9, type Backend, type LoadMix } from './deployment.js';
import { audit } from './audit.js';
import { table, writeReport, type Row } from './report.js';
import type { WeftProcess } from '../support/weft-process.js';

const MIX: LoadMix = { linear: 60, diamond: 60, python: 30 };
const NATIVE = ['faults_linear', 'faults_diamond'];
const WAIT_NAMESPACES = ['faults_waits', 'faults_tick'];
const DRAIN_MS = 90_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('weft under faults', () => {
  let root: string;
  let pgCluster: PrivatePostgres;
  let rabbit: PrivateRabbit;
  const rows: Row[] = [];

  beforeAll(async () => {
    root = makeRoot();
    // Should the run itself be killed (Ctrl-C, a CI timeout), still stop what it started, by pid.
    process.once('exit', () => {
      for (const p of everyProcess) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      for (const pid of [rabbit?.pid, pgCluster?.pid]) if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
      removeRoot(root);
    });
    pgCluster = new PrivatePostgres(root);
    rabbit = new PrivateRabbit(root);
    await pgCluster.init();
    await rabbit.init();
    await Promise.all([pgCluster.start(), rabbit.start()]);
  });

  afterAll(async () => {
    await Promise.all(everyProcess.map((p) => p.stop('SIGKILL').catch(() => undefined)));
    await rabbit?.stop().catch((err) => console.error('stopping the private RabbitMQ node:', err));
    await pgCluster?.stop().catch((err) => console.error('stopping the private PostgreSQL:', err));
    if (root) removeRoot(root);
    if (rows.length > 0) {
      writeReport(rows);
      process.stdout.write(`\n${table(rows)}\n`);
    }
  });

  /**
   * Start a deployment, submit the load while `inject` runs its faults, wait
   * for the tasks to end, audit, record the row, stop its processes, assert.
   */
  async function scenario(
    name: string,
    backend: Backend,
    opts: { mix?: LoadMix; env?: Record<string, string>; maxLosses?: number; python?: boolean; paceMs?: number; namespaces?: string[] },
    inject: (d: Deployment, workers: { native: WeftProcess[]; python?: WeftProcess }) => Promise<string[]>,
    note?: (d: Deployment) => string,
  ): Promise<Row> {
    const d = await Deployment.create(`${name}_${backend}`.replace(/[^a-z0-9]+/gi, '_').toLowerCase(), pgCluster, rabbit, backend, opts.env);
    try {
      await d.startOrchestrator();
      const [a, b, python] = await Promise.all([
        d.startWorker('native', opts.namespaces ?? NATIVE),
        d.startWorker('native', opts.namespaces ?? NATIVE),
        opts.python === false ? undefined : d.startWorker('python', ['faults_python']),
      ]);
      const started = Date.now();
      const loading = d.load(opts.mix ?? MIX, opts.paceMs ? 4 : 8, opts.paceMs ?? 0);
      const faults = await inject(d, { native: [a, b], python });
      await loading;
      await d.drain(DRAIN_MS);
      const result = await audit(d.db, d.expected, opts.maxLosses);
      const row: Row = {
        scenario: name,
        backend,
        faults: summarize(faults),
        faultCount: faults.length,
        note: note?.(d),
        wallMs: Date.now() - started,
        ...result,
      };
      rows.push(row);
      if (result.problems.length > 0) console.error(`${name}:\n  ${result.problems.join('\n  ')}`);
      return row;
    } finally {
      await d.stopAll();
    }
  }

  function expectClean(row: Row, losses: 'some' | 'none' | 'any' = 'any'): void {
    expect(row.problems).toEqual([]);
    expect(row).toMatchObject({ lost: 0, wrong: 0, duplicated: 0, illegal: 0, faultAttempts: 0 });
    if (losses === 'some') expect(row.losses).toBeGreaterThan(0);
    if (losses === 'none') expect(row.losses).toBe(0);
  }

  it.each<Backend>(['rabbitmq', 'pg'])('kill -9 of workers mid-load (%s): their steps run again elsewhere, none twice, no attempt used', async (backend) => {
    const row = await scenario('workers kill -9', backend, {}, async (d, { native: [a, b], python: py }) => {
      const faults: string[] = [];
      await d.untilProgress(0.15);
      await kill9(a!);
      faults.push('kill -9 native worker');
      await d.startWorker('native', NATIVE, { wait: false });
      await d.untilProgress(0.4);
      await Promise.all([kill9(b!), kill9(py!)]);
      faults.push('kill -9 native worker', 'kill -9 python worker');
      await Promise.all([d.startWorker('native', NATIVE, { wait: false }), d.startWorker('python', ['faults_python'], { wait: false })]);
      return faults;
    });
    expectClean(row, 'some');
  });

  it('kill -9 of the orchestrator while tasks are submitted and run: no accepted task lost, none duplicated', async () => {
    let retried = 0;
    // Submitted slowly (4 at a time, 50 ms apart) so that the first kill lands mid-submission:
    // the client sends again with the same idempotency key until a new orchestrator answers.
    const row = await scenario(
      'orchestrator kill -9',
      'rabbitmq',
      { paceMs: 50 },
      async (d) => {
        const faults: string[] = [];
        await d.untilAccepted(40);
        await kill9(d.orchestrator!);
        faults.push('kill -9 orchestrator');
        await sleep(1_000);
        await d.startOrchestrator();
        await d.untilProgress(0.4);
        await kill9(d.orchestrator!);
        faults.push('kill -9 orchestrator');
        await sleep(1_000);
        await d.startOrchestrator();
        retried = d.retried;
        return faults;
      },
      (d) => `${d.retried} POSTs retried with their idempotency key`,
    );
    expect(retried).toBeGreaterThan(0);
    expectClean(row);
  });

  // Leases count only time the database was reachable: an outage costs no worker its steps.
  it.each([
    {
      name: 'PostgreSQL crash',
      backend: 'rabbitmq' as Backend,
      how: 'immediate stop, WAL recovery',
      fault: 'PostgreSQL immediate stop + restart after 3 s',
      down: () => pgCluster.crash(),
    },
    {
      name: 'PostgreSQL kill -9',
      backend: 'pg' as Backend,
      how: 'kill -9 of the postmaster',
      fault: 'kill -9 postmaster + restart after 3 s',
      down: () => pgCluster.kill9(),
    },
  ])(
    'PostgreSQL goes down mid-load ($how, $backend queue) and comes back: nothing lost, nothing run again, nothing completed twice',
    async ({ name, backend, fault, down }) => {
      const row = await scenario(name, backend, {}, async (d) => {
        await d.untilProgress(0.25);
        await down();
        await sleep(3_000);
        await pgCluster.start(20_000); // after a kill -9, orphaned backends may hold its shared memory a moment
        return [fault];
      });
      expectClean(row, 'none');
    },
  );

  it('a worker killed while PostgreSQL is down (its results never written): its steps run again once the database is back', async () => {
    const row = await scenario('worker killed during PostgreSQL outage', 'pg', {}, async (d, { native: [a] }) => {
      await d.untilProgress(0.3);
      await pgCluster.crash();
      await sleep(1_000);
      await kill9(a!);
      const replacement = d.startWorker('native', NATIVE, { wait: false });
      await sleep(1_000);
      await pgCluster.start();
      await replacement;
      return ['PostgreSQL immediate stop', 'kill -9 native worker while it is down', 'PostgreSQL restart'];
    });
    expectClean(row, 'some');
  });

  it.each<Backend>(['pg', 'rabbitmq'])(
    'every connection terminated (pg_terminate_backend), three times (%s): weft reconnects and carries on',
    async (backend) => {
      const row = await scenario('connections terminated', backend, {}, async (d) => {
        const faults: string[] = [];
        for (const at of [0.15, 0.4, 0.65]) {
          await d.untilProgress(at);
          const admin = new pg.Client(pgCluster.url());
          await admin.connect();
          try {
            const { rows: killed } = await admin.query(
              `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name LIKE 'weft%'`,
              [d.database],
            );
            faults.push(`${killed.length} connections terminated`);
          } finally {
            await admin.end();
          }
        }
        return faults;
      });
      expectClean(row);
    },
  );

  it.each([
    { name: 'RabbitMQ restart', how: 'rabbitmqctl stop', fault: 'rabbitmqctl stop + rabbitmq-server start', down: () => rabbit.stop() },
    {
      name: 'RabbitMQ kill -9',
      how: 'kill -9 of its VM, unwritten messages lost',
      fault: 'kill -9 RabbitMQ + rabbitmq-server start',
      down: () => rabbit.kill9(),
    },
  ])('RabbitMQ goes down mid-load ($how) and starts again: messages wait in the outbox or are sent again, every task ends', async ({ name, fault, down }) => {
    const row = await scenario(name, 'rabbitmq', {}, async (d) => {
      await d.untilProgress(0.25);
      await down();
      await sleep(2_000);
      await rabbit.start();
      return [fault];
    });
    expectClean(row);
  });

  it('SIGTERM of a worker mid-step: it finishes what it runs, exits 0, and loses nothing', async () => {
    let exitCode: number | null = null;
    let running = 0;
    const row = await scenario('worker SIGTERM', 'rabbitmq', {}, async (d, { native: [victim] }) => {
      await d.untilProgress(0.3);
      const replacement = d.startWorker('native', NATIVE, { wait: false });
      // Signalled while its /health says it runs steps, so the drain has work to finish.
      await until('the worker to run a step', async () => (running = await d.inFlight(victim!)) > 0, 30_000);
      await victim!.stop('SIGTERM');
      exitCode = victim!.child.exitCode;
      await replacement;
      return [`SIGTERM native worker running ${running} steps`];
    });
    expect(running).toBeGreaterThan(0);
    expect(exitCode).toBe(0);
    expectClean(row, 'none');
  });

  it.each<Backend>(['pg', 'rabbitmq'])(
    'kill -9 of the orchestrator and of a worker while steps sleep and wait for signals and a schedule fires every second (%s): one task per firing, every wait ends once',
    async (backend) => {
      const WAITS = 40;
      const SCHEDULE = 'faults-tick';
      // What the audit cannot see, counted into the row's columns: a firing missing (lost) or with two
      // tasks (duplicated), a sleep or wait that ended wrong (wrong result) or waited twice (duplicated).
      const problems: string[] = [];
      const extra = { lost: 0, wrong: 0, duplicated: 0 };
      const problem = (column: keyof typeof extra, text: string) => {
        extra[column]++;
        problems.push(text);
      };
      let firings = 0;
      let signals = 0;
      let signalRetries = 0;
      const row = await scenario(
        'waits and a schedule',
        backend,
        { mix: { linear: 0, diamond: 0, python: 0 }, python: false, namespaces: [...WAIT_NAMESPACES] },
        async (d, { native: [a] }) => {
          const faults: string[] = [];
          const created = await d.api('POST', '/v1/schedules', {
            name: SCHEDULE,
            template: 'faults_tick/tick',
            cron: '* * * * * *',
            context: { n: 1000 },
            overlap: 'allow',
            catch_up: 'all',
          });
          if (created.status !== 201) throw new Error(`creating the schedule answered ${created.status}: ${JSON.stringify(created.body)}`);

          // Tasks that sleep 1.5 s and wait for a signal, side by side; signalled (v = n + 10) as soon as
          // their wait step waits, two at a time, again and again while the orchestrator is down.
          const submitting = (async () => {
            for (let n = 0; n < WAITS; n++) {
              await d.submit(`waits-${n}`, 'faults_waits', 'wait_chain', { n }, { state: 'complete', step: 'finish', value: String(n + 11) });
            }
          })();
          let next = 0;
          const signalling = Promise.all(
            [0, 1].map(async () => {
              for (;;) {
                const n = next++;
                if (n >= WAITS) return;
                await d.untilAccepted(n + 1, 120_000); // submitted one after another: the n-th accepted is waits-n
                const id = d.expected[n]!.id;
                await sleep(200);
                for (let tries = 0; ; tries++) {
                  const answer = await d.api('POST', `/v1/tasks/${id}/steps/approval/signal`, { v: n + 10 });
                  // 409 "is complete": an earlier try was committed though its answer was lost (the kill
                  // landed between COMMIT and the reply). The step's result is checked below either way.
                  if (answer.status === 200 || (answer.status === 409 && /is complete, not waiting/.test(answer.body?.error?.message))) break;
                  if (answer.status !== 409 || !/is pending, not waiting/.test(answer.body?.error?.message) || tries > 600)
                    throw new Error(`signalling task ${id}: ${answer.status} ${JSON.stringify(answer.body)}`);
                  signalRetries++;
                  await sleep(100);
                }
                signals++;
              }
            }),
          );

          const waiting = async () =>
            (await d.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM weft.steps WHERE state = 'waiting'`).catch(() => ({ rows: [{ n: 0 }] }))).rows[0]!
              .n;
          await until('steps to wait', async () => (await waiting()) >= 8, 60_000);
          await kill9(d.orchestrator!);
          faults.push('kill -9 orchestrator');
          await sleep(2_500);
          await d.startOrchestrator();
          await until('steps to wait again', async () => (await waiting()) >= 1, 60_000);
          await kill9(a!);
          faults.push('kill -9 native worker');
          await d.startWorker('native', [...WAIT_NAMESPACES], { wait: false });
          await until('steps to wait again', async () => (await waiting()) >= 1, 60_000);
          await kill9(d.orchestrator!);
          faults.push('kill -9 orchestrator');
          await sleep(2_500);
          await d.startOrchestrator();
          await submitting;
          await signalling;
          await sleep(2_000); // a few more firings after the last restart
          const paused = await d.api('POST', `/v1/schedules/${SCHEDULE}/pause`);
          if (paused.status !== 200) throw new Error(`pausing the schedule answered ${paused.status}: ${JSON.stringify(paused.body)}`);
          await d.drain(DRAIN_MS);

          // One task per firing time, from the first firing to the last, none twice (catch-up covers the downtime).
          const { rows: fired } = await d.db.query<{ id: string; key: string }>(
            `SELECT id, idempotency_key AS key FROM weft.tasks WHERE namespace = 'faults_tick' ORDER BY idempotency_key`,
          );
          const times = fired.map((f) => Date.parse(f.key.slice(`schedule:${SCHEDULE}:`.length)));
          firings = fired.length;
          if (firings < 8) problem('lost', `the schedule fired only ${firings} times`);
          if (new Set(times).size !== times.length) problem('duplicated', `a firing time has more than one task: ${fired.map((f) => f.key).join(', ')}`);
          for (let i = 1; i < times.length; i++)
            if (times[i]! - times[i - 1]! !== 1_000) problem('lost', `firings ${fired[i - 1]!.key} and ${fired[i]!.key} are not one second apart`);
          for (const f of fired) d.expected.push({ id: f.id, namespace: 'faults_tick', state: 'complete', step: 'tock', value: '1001' });
          const { rows: refused } = await d.db.query<{ kind: string; n: number }>(
            `SELECT kind, count(*)::int AS n FROM weft.schedule_events WHERE schedule = $1 AND kind IN ('skipped', 'missed') GROUP BY kind`,
            [SCHEDULE],
          );
          for (const r of refused) problem('lost', `${r.n} '${r.kind}' schedule events`);

          // Every sleep and wait step waited once and ended once: a sleep not before its due time, a wait with its signal.
          const { rows: waits } = await d.db.query<{
            task_id: string;
            name: string;
            type: string;
            state: string;
            result: any;
            n: string | null;
            entered: number;
            left: number;
            due: string | null;
            woke: Date | null;
            reason: string | null;
          }>(
            `SELECT s.task_id, s.name, s.type, s.state, s.result, t.context->>'n' AS n,
                    (SELECT count(*)::int FROM weft.step_transitions x WHERE x.step_id = s.id AND x.to_state = 'waiting') AS entered,
                    (SELECT count(*)::int FROM weft.step_transitions x WHERE x.step_id = s.id AND x.from_state = 'waiting') AS left,
                    (SELECT x.metadata->>'until' FROM weft.step_transitions x WHERE x.step_id = s.id AND x.to_state = 'waiting') AS due,
                    (SELECT x.at FROM weft.step_transitions x WHERE x.step_id = s.id AND x.from_state = 'waiting') AS woke,
                    (SELECT x.metadata->>'reason' FROM weft.step_transitions x WHERE x.step_id = s.id AND x.from_state = 'waiting') AS reason
               FROM weft.steps s JOIN weft.tasks t ON t.id = s.task_id WHERE s.wait IS NOT NULL`,
          );
          if (waits.length !== 2 * WAITS + firings) problem('lost', `${waits.length} sleep and wait steps, expected ${2 * WAITS + firings}`);
          for (const w of waits) {
            const where = `${w.type} step ${w.name} of task ${w.task_id}`;
            if (w.state !== 'complete' || w.entered !== 1 || w.left !== 1)
              problem(
                w.entered > 1 || w.left > 1 ? 'duplicated' : 'wrong',
                `${where} is ${w.state}, entered waiting ${w.entered} times, left it ${w.left} times`,
              );
            else if (w.type === 'sleep') {
              const slept = Date.parse(w.result?.slept_until);
              if (!(slept >= Date.parse(w.due!)) || !(w.woke!.getTime() >= Date.parse(w.due!)) || w.reason !== 'slept')
                problem('wrong', `${where} was due at ${w.due}, slept until ${w.result?.slept_until}, woke at ${w.woke?.toISOString()} (${w.reason})`);
            } else if (JSON.stringify(w.result) !== JSON.stringify({ v: Number(w.n) + 10 }) || w.reason !== 'signalled') {
              problem('wrong', `${where} ended with ${JSON.stringify(w.result)} (${w.reason}), expected the signal {"v":${Number(w.n) + 10}}`);
            }
          }
          return faults;
        },
        (d) => `${firings} schedule firings, ${signals} signals (${signalRetries} sent before the step waited), ${d.retried} requests sent again`,
      );
      // The row is the report's (rows[]): what the scenario's own checks found goes into its columns.
      row.lost += extra.lost;
      row.wrong += extra.wrong;
      row.duplicated += extra.duplicated;
      row.problems.push(...problems);
      expect(signals).toBe(WAITS);
      expectClean(row);
    },
  );

  it('a handler that SIGKILLs its own worker on every attempt: the step fails with WorkerLostError after WEFT_STEP_MAX_LOSSES, never retried forever', async () => {
    const maxLosses = 3;
    const row = await scenario(
      'handler kills its worker',
      'pg',
      { mix: { linear: 40, diamond: 40, python: 0, suicide: 2 }, env: { WEFT_STEP_MAX_LOSSES: String(maxLosses) }, maxLosses, python: false },
      async (d) => {
        // Its own worker, one step at a time, restarted whenever it dies, as a supervisor would.
        const faults: string[] = [];
        const deadline = Date.now() + 75_000;
        // Not waited for: it may claim a self-killing step before its /health first answers.
        let worker = await d.startWorker('native', ['faults_suicide'], { concurrency: 1, wait: false });
        for (;;) {
          const { rows: open } = await d.db
            .query<{ n: number }>(`SELECT count(*)::int AS n FROM weft.tasks WHERE namespace = 'faults_suicide' AND state IN ('pending', 'running')`)
            .catch(() => ({ rows: [{ n: 1 }] }));
          const submitted = d.expected.some((e) => e.namespace === 'faults_suicide');
          if ((submitted && open[0]!.n === 0) || Date.now() > deadline) break;
          if (worker.child.exitCode !== null || worker.child.signalCode !== null) {
            faults.push(`worker killed itself (${worker.child.signalCode ?? worker.child.exitCode})`);
            worker = await d.startWorker('native', ['faults_suicide'], { concurrency: 1, wait: false });
          }
          await sleep(200);
        }
        return faults;
      },
    );
    expect(row.faultCount).toBeGreaterThanOrEqual(maxLosses);
    expect(row.faultCount).toBeLessThanOrEqual(2 * maxLosses + 1);
    expectClean(row, 'some');
  });
});

function summarize(faults: string[]): string {
  const counts = new Map<string, number>();
  for (const f of faults) counts.set(f, (counts.get(f) ?? 0) + 1);
  return [...counts].map(([f, n]) => (n > 1 ? `${n}× ${f}` : f)).join('; ');
}
