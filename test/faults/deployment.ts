/**
 * One scenario's weft: its own database on the private cluster, its own queue
 * prefix, real `weft orchestrator` and `weft worker` processes, the load it
 * submits through the HTTP API, and the faults it injects into them.
 */
import pg from 'pg';
import { join } from 'node:path';
import { spawnWeft, type WeftProcess } from '../support/weft-process.js';
import { freePort } from '../support/ports.js';
import { until, type PrivatePostgres, type PrivateRabbit } from './cluster.js';

export const FIXTURES = join(import.meta.dirname, 'fixtures');

export type Backend = 'pg' | 'rabbitmq';

/** What a submitted task must end as. */
export interface Expectation {
  id: string;
  namespace: string;
  state: 'complete' | 'error';
  /** the step whose result is the task's answer, and that answer */
  step?: string;
  value?: string;
}

export interface LoadMix {
  linear: number;
  diamond: number;
  python: number;
  suicide?: number;
}

/** Every process any scenario started, so afterAll can stop each by pid whatever happened. */
export const everyProcess: WeftProcess[] = [];

export class Deployment {
  readonly db: pg.Pool;
  readonly expected: Expectation[] = [];
  readonly processes: WeftProcess[] = [];
  orchestratorPort = 0;
  /** each worker's /health port */
  readonly healthPorts = new Map<WeftProcess, number>();
  /** the orchestrator started last */
  orchestrator?: WeftProcess;
  /** submissions sent again because the orchestrator did not answer (it was down) */
  retried = 0;

  constructor(
    readonly name: string,
    readonly pgCluster: PrivatePostgres,
    readonly rabbit: PrivateRabbit,
    readonly backend: Backend,
    readonly extraEnv: Record<string, string> = {},
  ) {
    this.db = new pg.Pool({ connectionString: pgCluster.url(this.database), max: 2, connectionTimeoutMillis: 2_000 });
    // A pool client whose server went away (crash, pg_terminate_backend) emits 'error'; the next query reconnects.
    this.db.on('error', () => undefined);
  }

  get database(): string {
    return `faults_${this.name}`;
  }

  static async create(
    name: string,
    pgCluster: PrivatePostgres,
    rabbit: PrivateRabbit,
    backend: Backend,
    extraEnv: Record<string, string> = {},
  ): Promise<Deployment> {
    const admin = new pg.Client(pgCluster.url());
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE faults_${name}`);
    } finally {
      await admin.end();
    }
    return new Deployment(name, pgCluster, rabbit, backend, extraEnv);
  }

  env(): Record<string, string> {
    return {
      WEFT_DATABASE_URL: this.pgCluster.url(this.database),
      WEFT_MESSAGING: this.backend,
      WEFT_AMQP_URL: this.rabbit.url(),
      WEFT_QUEUE_PREFIX: `faults_${this.name}`,
      WEFT_HOME: join(this.pgCluster.dir, '..', `home_${this.name}`),
      WEFT_LEASE_MS: '3000',
      WEFT_POLL_INTERVAL_MS: '500',
      WEFT_REDISPATCH_AFTER_MS: '5000',
      WEFT_DB_CONNECT_TIMEOUT_MS: '2000',
      WEFT_DB_QUERY_TIMEOUT_MS: '10000',
      WEFT_LOG_LEVEL: 'warn',
      WEFT_FAULTS_STEP_MS: '100',
      ...this.extraEnv,
    };
  }

  private track(p: WeftProcess): WeftProcess {
    this.processes.push(p);
    everyProcess.push(p);
    return p;
  }

  /** Start an orchestrator (on the same port as the last one, so clients keep their address) and wait for its API. */
  async startOrchestrator(): Promise<WeftProcess> {
    this.orchestratorPort ||= await freePort();
    const p = this.track(spawnWeft(['orchestrator', '--port', String(this.orchestratorPort), '--templates', join(FIXTURES, 'templates')], this.env()));
    await until(
      `the orchestrator of ${this.name} to answer (output: ${p.output().slice(-1000)})`,
      async () => {
        if (p.child.exitCode !== null) throw new Error(`orchestrator exited ${p.child.exitCode}: ${p.output().slice(-2000)}`);
        return healthy(this.orchestratorPort);
      },
      60_000,
    );
    this.orchestrator = p;
    return p;
  }

  /** Start a worker and wait for its /health to say healthy. */
  async startWorker(kind: 'native' | 'python', namespaces: string[], opts: { wait?: boolean; concurrency?: number } = {}): Promise<WeftProcess> {
    const port = await freePort();
    const handlers = kind === 'native' ? join(FIXTURES, 'handlers') : 'handlers/python';
    const p = this.track(
      spawnWeft(
        [
          'worker',
          '--runtime',
          kind,
          '--handlers',
          handlers,
          '--namespaces',
          namespaces.join(','),
          '--concurrency',
          String(opts.concurrency ?? 4),
          '--port',
          String(port),
        ],
        this.env(),
      ),
    );
    this.healthPorts.set(p, port);
    if (opts.wait !== false) {
      await until(
        `a ${kind} worker of ${this.name} to be healthy (output: ${p.output().slice(-1000)})`,
        async () => {
          if (p.child.exitCode !== null || p.child.signalCode !== null)
            throw new Error(`worker exited ${p.child.exitCode ?? p.child.signalCode}: ${p.output().slice(-2000)}`);
          return healthy(port);
        },
        60_000,
      );
    }
    return p;
  }

  /** Steps a worker runs right now, from its /health (0 while it does not answer). */
  async inFlight(worker: WeftProcess): Promise<number> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.healthPorts.get(worker)}/health`, { signal: AbortSignal.timeout(2_000) });
      const body = (await res.json()) as { in_flight?: unknown };
      return Number(body.in_flight ?? 0);
    } catch {
      return 0;
    }
  }

  /**
   * POST one task, as a careful client does: with an idempotency key, again
   * and again while the orchestrator is unreachable (it may be down for a
   * fault), so a request whose answer was lost never creates a second task.
   * A 409 for that key names the task the first request created.
   */
  async submit(key: string, namespace: string, name: string, context: Record<string, unknown>, expect: Omit<Expectation, 'id' | 'namespace'>): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${this.orchestratorPort}/v1/tasks`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ namespace, name, context, idempotency_key: `${this.name}-${key}` }),
          signal: AbortSignal.timeout(10_000),
        });
        const text = await res.text();
        // 200: a retry of a POST whose first try was committed though its answer was lost (the kill
        // landed between COMMIT and the reply): the idempotency key gives back the same task.
        const id =
          res.status === 201 || res.status === 200
            ? (JSON.parse(text) as { id: string }).id
            : res.status === 409
              ? /[0-9a-f]{8}-[0-9a-f-]{27}/.exec(text)?.[0]
              : undefined;
        if (id) {
          this.expected.push({ id, namespace, ...expect });
          return;
        }
        if (res.status < 500) throw new Error(`POST /v1/tasks answered ${res.status}: ${text}`);
      } catch (err) {
        if (err instanceof Error && err.message.startsWith('POST /v1/tasks answered')) throw err;
      }
      this.retried++;
      if (Date.now() > deadline) throw new Error(`${this.name}: the orchestrator did not accept task ${key} within 60 s`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /**
   * Send one request to the orchestrator's API the way a careful client
   * does: again while the orchestrator does not answer (it may be down for a
   * fault) or answers 5xx, until `deadlineMs`. Counts the retries in
   * `retried`. Answers the first status below 500 and its body.
   */
  async api(method: 'GET' | 'POST', path: string, body?: unknown, deadlineMs = 60_000): Promise<{ status: number; body: any }> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${this.orchestratorPort}${path}`, {
          method,
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
        const text = await res.text();
        if (res.status < 500) return { status: res.status, body: text ? JSON.parse(text) : null };
      } catch {
        // not listening (killed), or the answer was lost: ask again
      }
      this.retried++;
      if (Date.now() > deadline) throw new Error(`${this.name}: ${method} ${path} got no answer below 500 within ${deadlineMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Submit a mix of tasks, `parallel` requests at a time, in an interleaved order. */
  async load(mix: LoadMix, parallel = 8, paceMs = 0): Promise<void> {
    const jobs: Array<() => Promise<void>> = [];
    const max = Math.max(mix.linear, mix.diamond, mix.python, mix.suicide ?? 0);
    for (let i = 0; i < max; i++) {
      const n = i;
      if (i < mix.linear)
        jobs.push(() => this.submit(`linear-${n}`, 'faults_linear', 'chain', { n }, { state: 'complete', step: 'linear_4', value: String(n + 4) }));
      if (i < mix.diamond)
        jobs.push(() => this.submit(`diamond-${n}`, 'faults_diamond', 'diamond', { n }, { state: 'complete', step: 'diamond_end', value: String(2 * n + 5) }));
      if (i < mix.python) {
        const even = 2 + 2 * (i % 2);
        jobs.push(() =>
          this.submit(
            `python-${n}`,
            'faults_python',
            'chain',
            { even_number: even },
            { state: 'complete', step: 'linear_step_4', value: String(BigInt(even) ** 16n) },
          ),
        );
      }
      if (i < (mix.suicide ?? 0)) jobs.push(() => this.submit(`suicide-${n}`, 'faults_suicide', 'suicide', { n }, { state: 'error' }));
    }
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < jobs.length) {
          await jobs[next++]!();
          if (paceMs > 0) await new Promise((r) => setTimeout(r, paceMs));
        }
      }),
    );
  }

  /** Fraction of the expected tasks' steps that are complete (0 while the database is unreachable). */
  async progress(): Promise<number> {
    const { rows } = await this.db.query<{ done: number; total: number }>(
      `SELECT count(*) FILTER (WHERE state = 'complete')::int AS done, count(*)::int AS total FROM weft.steps`,
    );
    return rows[0]!.total === 0 ? 0 : rows[0]!.done / rows[0]!.total;
  }

  async untilAccepted(n: number, ms = 60_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.expected.length < n) {
      if (Date.now() > deadline) throw new Error(`${this.name}: only ${this.expected.length} of ${n} tasks accepted after ${ms} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async untilProgress(fraction: number, ms = 60_000): Promise<void> {
    await until(`${this.name}: ${fraction * 100}% of steps complete`, async () => (await this.progress().catch(() => 0)) >= fraction, ms);
  }

  /** Wait until no task is pending or running (or `ms` passes: the audit then counts the stragglers as lost). */
  async drain(ms: number): Promise<boolean> {
    try {
      await until(
        `${this.name}: every task to end`,
        async () => {
          const { rows } = await this.db
            .query<{ open: number }>(`SELECT count(*)::int AS open FROM weft.tasks WHERE state IN ('pending', 'running')`)
            .catch(() => ({ rows: [{ open: -1 }] }));
          return rows[0]!.open === 0;
        },
        ms,
      );
      return true;
    } catch {
      return false;
    }
  }

  /** SIGKILL every process of this scenario (the audit is done; nothing to drain). */
  async stopAll(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop('SIGKILL')));
    await this.db.end().catch(() => undefined);
  }
}

async function healthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) });
    return res.status === 200;
  } catch {
    return false; // not listening yet
  }
}

/** kill -9 a weft process by its pid and wait until it is gone. */
export async function kill9(p: WeftProcess): Promise<void> {
  await p.stop('SIGKILL');
}
