/**
 * A local cluster (`weft cluster start|stop|status`) of orchestrators and
 * workers (issue 5), the topology the seed benchmarked (2 orchestrators, 2
 * workers per runtime) on one machine.
 *
 * Design: one supervisor process owns every child. `cluster start` spawns the
 * supervisor detached (`cluster start --foreground` runs it in the terminal)
 * and returns once it reports every child healthy. The supervisor
 *   1. takes the database once (the embedded PostgreSQL when WEFT_DATABASE_URL
 *      is unset) and migrates it, then hands its URL to the children, so ten
 *      processes neither race to start the server nor to migrate;
 *   2. spawns the children with their ports, one log file each;
 *   3. waits for GET /health of each (orchestrator and worker --port);
 *   4. restarts a child that exits (after 0.5 s, then backing off with jitter up to 30 s);
 *   5. on SIGTERM stops the children by pid (SIGTERM, then SIGKILL after a
 *      grace period), deletes the RabbitMQ queues of its private prefix and
 *      lets go of the embedded PostgreSQL.
 * `weft bench` uses the same `ClusterSupervisor` class in its own process.
 *
 * Files under `<WEFT_HOME>/cluster/`:
 * ```
 * state.json         supervisor pid, status (starting|ready|failed|stopping|stopped), every child's
 *                    role, runtime, port, pid, restarts and log path
 * supervisor.log     the detached supervisor's own output
 * logs/<name>.log    one per child (appended across restarts)
 * ```
 *
 * @example
 * weft cluster start --orchestrators 2 --workers native=2,python=2 --backend pg
 * weft cluster status
 * weft cluster stop
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, processEnvironment, type WeftConfig } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { ConfigError, WeftError } from '../shared/errors.js';
import { packageRoot } from '../shared/paths.js';
import { getJson } from '../shared/http-json.js';
import { connectStore, type Store } from './connect-store.js';
import { redactUrl } from '../shared/redact.js';
import { acquireEmbeddedPostgres } from './embedded-postgres.js';
import { portIsFree } from './ports.js';
import { isAlive } from './processes.js';
import { recordProcessExit } from '../store/processes.js';
import { describeExit } from '../core/process-exit.js';
import { backoffMs } from '../shared/retry.js';
import { loadTemplateDir } from '../core/template/load.js';
import { deletePrefixQueues } from '../messaging/broker-admin.js';
import { namespacesForRuntime } from '../store/templates.js';
import { isRuntime, RUNTIMES, runtimeRow, type Runtime } from '../shared/runtimes.js';
import { backendRow, type MessagingBackend } from '../shared/backends.js';

/** Orchestrators listen from the base port (8080); each runtime's workers from its table row's `clusterPortOffset` on. */
const ORCHESTRATOR_PORT_OFFSET = 0;

/** The port a runtime's `i`th worker listens on. */
function workerPort(basePort: number, rt: Runtime, i: number): number {
  return basePort + runtimeRow(rt).clusterPortOffset + i;
}

/** The shipped handler folder a runtime loads (native and typescript-through-the-bridge share the TypeScript handlers). */
function shippedHandlers(root: string, rt: Runtime): string {
  return join(root, 'handlers', runtimeRow(rt).handlerDir);
}

export class ClusterError extends WeftError {
  override name = 'ClusterError';
  constructor(message: string) {
    super('cluster_failed', message);
  }
}

export interface ClusterSpec {
  orchestrators: number;
  workers: Partial<Record<Runtime, number>>;
  backend: MessagingBackend;
  basePort: number;
  /** Directory for state.json and logs/. */
  stateDir: string;
  /** Environment for the children (WEFT_* settings); the supervisor adds the database URL, messaging and queue prefix. */
  env?: NodeJS.ProcessEnv;
  /** Worker --concurrency. */
  concurrency?: number;
  /** Give up on a child that is not healthy after this long. */
  healthTimeoutMs?: number;
  /** Template directory the orchestrators register (default: the shipped templates/). */
  templates?: string;
  /** Handler directory per runtime, instead of the shipped handlers/ (weft bench's I/O tier loads its own). */
  handlers?: Partial<Record<Runtime, string>>;
}

export interface ChildState {
  name: string;
  role: 'orchestrator' | 'worker';
  runtime: Runtime | null;
  port: number;
  url: string;
  pid: number | null;
  restarts: number;
  log: string;
  healthy: boolean;
}

export interface ClusterState {
  supervisor_pid: number;
  status: 'starting' | 'ready' | 'failed' | 'stopping' | 'stopped';
  started_at: string;
  backend: MessagingBackend;
  database: string;
  queue_prefix: string | null;
  error?: string;
  processes: ChildState[];
}

/** Parse `native=2,python=2` (a bare runtime means 1). */
export function parseWorkers(spec: string): Partial<Record<Runtime, number>> {
  const out: Partial<Record<Runtime, number>> = {};
  for (const part of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [rt = '', n = '1'] = part.split('=');
    if (!isRuntime(rt)) throw new ConfigError(`--workers names runtime "${rt}"; use ${RUNTIMES.join(', ')} as runtime=count, e.g. native=2,python=2`);
    const count = Number(n);
    if (!Number.isInteger(count) || count < 0 || count > 20) throw new ConfigError(`--workers ${rt}=${n}: the count must be an integer from 0 to 20`);
    out[rt] = count;
  }
  return out;
}

/** Every port a spec listens on. */
export function clusterPorts(spec: Pick<ClusterSpec, 'orchestrators' | 'workers' | 'basePort'>): number[] {
  const ports: number[] = [];
  for (let i = 0; i < spec.orchestrators; i++) ports.push(spec.basePort + ORCHESTRATOR_PORT_OFFSET + i);
  for (const rt of RUNTIMES) for (let i = 0; i < (spec.workers[rt] ?? 0); i++) ports.push(workerPort(spec.basePort, rt, i));
  return ports;
}

/** The command line that runs this CLI again: the same node flags (e.g. `--import tsx`) and entry file. */
export function cliCommand(): { node: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  const entry = join(dirname(here), '..', 'cli', here.endsWith('.ts') ? 'main.ts' : 'main.js');
  const execArgv = [...process.execArgv].filter((a) => !a.startsWith('--inspect'));
  if (entry.endsWith('.ts') && !execArgv.some((a) => a.includes('tsx'))) execArgv.push('--import', 'tsx');
  return { node: process.execPath, args: [...execArgv, entry] };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

interface Managed {
  state: ChildState;
  args: string[];
  child?: ChildProcess;
  exited?: Promise<void>;
  backoffMs: number;
  /** Restarts since the child was last healthy. */
  restartsInARow: number;
  restartTimer?: NodeJS.Timeout;
}

/**
 * Starts, watches and stops one local cluster. `start()` resolves when every
 * child answers GET /health with 200; `stop()` stops them all by pid.
 */
export class ClusterSupervisor {
  readonly spec: Required<Omit<ClusterSpec, 'env'>> & { env: NodeJS.ProcessEnv };
  private readonly log: Logger;
  private readonly children: Managed[] = [];
  private store?: Store;
  private releaseEmbedded?: () => Promise<void>;
  private stopping = false;
  private stopPromise?: Promise<void>;
  private status: ClusterState['status'] = 'starting';
  private error?: string;
  private databaseUrl = '';
  private queuePrefix: string | null = null;
  private ownsPrefix = false;
  private readonly startedAt = new Date().toISOString();
  /** Exits being written to weft.processes (awaited before the store closes). */
  private readonly recording = new Set<Promise<void>>();

  constructor(spec: ClusterSpec, log: Logger) {
    this.spec = { concurrency: 32, healthTimeoutMs: 120_000, env: processEnvironment(), templates: join(packageRoot(), 'templates'), handlers: {}, ...spec };
    this.log = log;
  }

  get statePath(): string {
    return join(this.spec.stateDir, 'state.json');
  }

  orchestratorUrls(): string[] {
    return this.children.filter((c) => c.state.role === 'orchestrator').map((c) => c.state.url);
  }

  processes(): ChildState[] {
    return this.children.map((c) => ({ ...c.state }));
  }

  /** The database URL the children use (the embedded server's when WEFT_DATABASE_URL is unset). */
  get database(): string {
    return this.databaseUrl;
  }

  async start(): Promise<void> {
    const { spec } = this;
    if (spec.orchestrators < 1) throw new ConfigError('--orchestrators must be at least 1');
    mkdirSync(join(spec.stateDir, 'logs'), { recursive: true });
    const busy: number[] = [];
    for (const p of clusterPorts(spec)) if (!(await portIsFree(p))) busy.push(p);
    if (busy.length) throw new ClusterError(`port(s) ${busy.join(', ')} are in use on 127.0.0.1; stop what listens there or choose another --base-port`);

    try {
      const config = loadConfig(spec.env);
      // One database for everyone, started and migrated once, before any child starts.
      if (!config.databaseUrl) {
        const embedded = await acquireEmbeddedPostgres({ home: config.home, port: config.embeddedPgPort, log: (m) => this.log.info(m) });
        this.releaseEmbedded = () => embedded.release();
        // The children connect through the server's unix socket (cheaper per query than TCP).
        this.databaseUrl = embedded.localUrl;
      } else this.databaseUrl = config.databaseUrl;
      this.store = await connectStore({ ...config, databaseUrl: this.databaseUrl, pool: { ...config.pool, max: 2 } }, this.log, {
        applicationName: 'weft-cluster',
      });
      if (backendRow(spec.backend).queuePrefix) {
        this.queuePrefix = config.queuePrefix ?? `weft_cluster_${randomBytes(4).toString('hex')}`;
        this.ownsPrefix = config.queuePrefix === undefined;
      }
      this.plan();
      this.writeState();
      // The first orchestrator registers the templates alone: concurrent first registrations of the
      // same template can race in registerTemplate (INSERT … ON CONFLICT DO NOTHING sees no row), and
      // workers that serve "every namespace of this runtime" should find the templates in place.
      const [first, ...rest] = this.children;
      this.spawnChild(first!);
      await this.waitHealthy(first!);
      for (const c of rest) this.spawnChild(c);
      await Promise.all(rest.map((c) => this.waitHealthy(c)));
      this.status = 'ready';
      this.writeState();
      this.log.info({ processes: this.children.length, backend: spec.backend }, 'cluster ready');
    } catch (err) {
      this.status = 'failed';
      this.error = (err as Error).message;
      this.writeState();
      await this.stop('failed');
      throw err;
    }
  }

  private plan(): void {
    const { spec } = this;
    const { node, args } = cliCommand();
    const root = packageRoot();
    const add = (name: string, role: ChildState['role'], runtime: Runtime | null, port: number, cmd: string[]) =>
      this.children.push({
        state: {
          name,
          role,
          runtime,
          port,
          url: `http://127.0.0.1:${port}`,
          pid: null,
          restarts: 0,
          log: join(spec.stateDir, 'logs', `${name}.log`),
          healthy: false,
        },
        args: [node, ...args, ...cmd],
        backoffMs: 500,
        restartsInARow: 0,
      });
    for (let i = 0; i < spec.orchestrators; i++) {
      const port = spec.basePort + ORCHESTRATOR_PORT_OFFSET + i;
      add(`orchestrator-${i + 1}`, 'orchestrator', null, port, ['orchestrator', '--port', String(port), '--templates', spec.templates]);
    }
    for (const rt of RUNTIMES) {
      for (let i = 0; i < (spec.workers[rt] ?? 0); i++) {
        const port = workerPort(spec.basePort, rt, i);
        add(`worker-${rt}-${i + 1}`, 'worker', rt, port, [
          'worker',
          '--runtime',
          rt,
          '--handlers',
          spec.handlers[rt] ?? shippedHandlers(root, rt),
          '--port',
          String(port),
          '--concurrency',
          String(spec.concurrency),
        ]);
      }
    }
  }

  private childEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...this.spec.env, WEFT_DATABASE_URL: this.databaseUrl, WEFT_MESSAGING: this.spec.backend };
    if (this.queuePrefix) env.WEFT_QUEUE_PREFIX = this.queuePrefix;
    env.WEFT_LOG_LEVEL ??= 'warn';
    return env;
  }

  private spawnChild(c: Managed): void {
    const fd = openSync(c.state.log, 'a');
    const [cmd, ...args] = c.args;
    const child = spawn(cmd!, args, { cwd: packageRoot(), env: this.childEnv(), stdio: ['ignore', fd, fd] });
    closeSync(fd);
    c.child = child;
    c.state.pid = child.pid ?? null;
    c.state.healthy = false;
    c.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        c.state.pid = null;
        c.state.healthy = false;
        if (c.state.role === 'worker' && child.pid) this.recordExit(c, child.pid, code, signal);
        resolve();
        if (this.stopping) return;
        this.log.warn({ process: c.state.name, code, signal, restartInMs: c.backoffMs }, 'cluster process exited; restarting it');
        c.state.restarts++;
        this.writeState();
        c.restartTimer = setTimeout(() => {
          if (this.stopping) return;
          this.spawnChild(c);
          this.writeState();
          void this.waitHealthy(c).then(
            () => {
              c.backoffMs = 500;
              c.restartsInARow = 0;
              this.writeState();
            },
            (err: Error) => this.log.error({ process: c.state.name, err: err.message }, 'restarted process did not become healthy'),
          );
        }, c.backoffMs);
        c.restartsInARow++;
        c.backoffMs = Math.round(backoffMs(c.restartsInARow + 1, 1_000, 30_000));
      });
    });
    child.once('error', (err) => this.log.error({ process: c.state.name, err: err.message }, 'could not spawn a cluster process'));
  }

  /**
   * Write how a worker ended on its row in weft.processes: the lease sweep
   * then names the cause (a crash's signal, a kill, an exit code) of each
   * loss of the steps it was running, instead of "went silent" (issue 15).
   */
  private recordExit(c: Managed, pid: number, code: number | null, signal: NodeJS.Signals | null): void {
    const db = this.store?.db;
    if (!db) return;
    const exit = describeExit(code, signal);
    const work = recordProcessExit(db, { pid, exit, seenBy: 'the weft cluster supervisor' }).then(
      // No row: it stopped cleanly (and deregistered), or never registered.
      (id) => {
        if (id) this.log.info({ process: c.state.name, worker: id, ...exit }, 'recorded how the worker ended');
      },
      (err: Error) =>
        this.log.warn({ process: c.state.name, err: err.message }, 'could not record how the worker ended; its lost steps will read "went silent"'),
    );
    this.recording.add(work);
    void work.finally(() => this.recording.delete(work));
  }

  private async waitHealthy(c: Managed): Promise<void> {
    const deadline = Date.now() + this.spec.healthTimeoutMs;
    const child = c.child;
    while (Date.now() < deadline) {
      if (this.stopping) throw new ClusterError('the cluster is stopping');
      if (child !== c.child || !child || child.exitCode !== null || child.signalCode !== null) {
        if (this.status === 'starting') {
          throw new ClusterError(`${c.state.name} exited before it became healthy; the end of ${c.state.log}:\n${tail(c.state.log)}`);
        }
        return; // the restart path watches the new child
      }
      const ok = await getJson(`${c.state.url}/health`, 1000).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) {
        c.state.healthy = true;
        this.writeState(); // `weft cluster start` shows the progress from it
        return;
      }
      await sleep(100);
    }
    throw new ClusterError(
      `${c.state.name} did not answer GET ${c.state.url}/health with 200 within ${this.spec.healthTimeoutMs} ms; the end of ${c.state.log}:\n${tail(c.state.log)}`,
    );
  }

  /** Stop every child by pid (SIGTERM, SIGKILL after `graceMs`), clean up the queues, release the database. */
  stop(reason = 'stopped', graceMs = 15_000): Promise<void> {
    // Every caller (a signal handler, a finally block) waits for the same, single stop.
    this.stopPromise ??= this.stopOnce(reason, graceMs);
    return this.stopPromise;
  }

  private async stopOnce(reason: string, graceMs: number): Promise<void> {
    this.stopping = true;
    if (reason !== 'failed' && this.status !== 'failed') this.status = 'stopping';
    this.writeState();
    for (const c of this.children) clearTimeout(c.restartTimer);
    await Promise.all(
      this.children.map(async (c) => {
        const child = c.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const killer = setTimeout(() => {
          this.log.warn({ process: c.state.name, pid: child.pid }, 'did not stop within the grace period; sending SIGKILL');
          child.kill('SIGKILL');
        }, graceMs);
        await c.exited;
        clearTimeout(killer);
      }),
    );
    if (this.queuePrefix && this.ownsPrefix)
      await this.deleteQueues().catch((err: Error) => this.log.warn({ err: err.message }, 'could not delete the cluster queues'));
    await Promise.allSettled([...this.recording]);
    await this.store?.close();
    this.store = undefined;
    await this.releaseEmbedded?.();
    this.releaseEmbedded = undefined;
    if (this.status !== 'failed') this.status = 'stopped';
    this.writeState();
  }

  /**
   * Delete the RabbitMQ queues of this cluster's private prefix: for every namespace of its templates and
   * every namespace the database holds, since the workers serve all of a runtime's namespaces it knows
   * (a bench database holds the shipped templates and the I/O tier's).
   */
  private async deleteQueues(): Promise<void> {
    const namespaces = new Set((await loadTemplateDir(this.spec.templates)).map((t) => t.namespace));
    if (this.store) for (const rt of RUNTIMES) for (const ns of await namespacesForRuntime(this.store.db, rt)) namespaces.add(ns);
    await deletePrefixQueues(loadConfig(this.spec.env).amqpUrl, this.queuePrefix!, namespaces, RUNTIMES);
  }

  snapshot(): ClusterState {
    return {
      supervisor_pid: process.pid,
      status: this.status,
      started_at: this.startedAt,
      backend: this.spec.backend,
      database: this.databaseUrl ? redactUrl(this.databaseUrl) : '',
      queue_prefix: this.queuePrefix,
      ...(this.error ? { error: this.error } : {}),
      processes: this.processes(),
    };
  }

  private writeState(): void {
    try {
      const tmp = `${this.statePath}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(this.snapshot(), null, 2)}\n`);
      renameSync(tmp, this.statePath);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not write the cluster state file');
    }
  }
}

export function readClusterState(stateDir: string): ClusterState | undefined {
  const file = join(stateDir, 'state.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

export interface StartOptions {
  orchestrators: number;
  workers: string;
  backend: MessagingBackend;
  basePort: number;
  concurrency: number;
  foreground: boolean;
  timeout: number;
}

function clusterDir(config: WeftConfig): string {
  return join(config.home, 'cluster');
}

function formatState(s: ClusterState): string {
  const rows = s.processes.map(
    (p) =>
      `  ${p.name.padEnd(22)} ${String(p.pid ?? '-').padStart(7)}  ${p.url.padEnd(22)} ${p.healthy ? 'healthy' : 'not healthy'}${p.restarts ? `  (restarted ${p.restarts}×)` : ''}`,
  );
  return [
    `cluster ${s.status}: supervisor pid ${s.supervisor_pid}, backend ${s.backend}, database ${s.database}${s.queue_prefix ? `, queue prefix ${s.queue_prefix}` : ''}`,
    ...rows,
  ].join('\n');
}

export async function startForeground(config: WeftConfig, log: Logger, o: StartOptions): Promise<void> {
  const sup = new ClusterSupervisor(
    {
      orchestrators: o.orchestrators,
      workers: parseWorkers(o.workers),
      backend: o.backend,
      basePort: o.basePort,
      stateDir: clusterDir(config),
      concurrency: o.concurrency,
      healthTimeoutMs: o.timeout,
    },
    log,
  );
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping the cluster');
    void sup.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await sup.start();
  process.stdout.write(`${formatState(sup.snapshot())}\n`);
}

export async function startDetached(config: WeftConfig, o: StartOptions): Promise<number> {
  const dir = clusterDir(config);
  const existing = readClusterState(dir);
  if (existing && isAlive(existing.supervisor_pid) && existing.status !== 'stopped') {
    process.stderr.write(
      `weft: a cluster is already running (supervisor pid ${existing.supervisor_pid}, ${existing.status}); run \`weft cluster stop\` first\n`,
    );
    return 1;
  }
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, 'supervisor.log');
  const fd = openSync(logFile, 'a');
  const { node, args } = cliCommand();
  const child = spawn(
    node,
    [
      ...args,
      'cluster',
      'start',
      '--foreground',
      '--orchestrators',
      String(o.orchestrators),
      '--workers',
      o.workers,
      '--backend',
      o.backend,
      '--base-port',
      String(o.basePort),
      '--concurrency',
      String(o.concurrency),
      '--timeout',
      String(o.timeout),
    ],
    { detached: true, stdio: ['ignore', fd, fd], cwd: process.cwd(), env: processEnvironment() },
  );
  closeSync(fd);
  child.unref();
  const pid = child.pid!;
  const deadline = Date.now() + o.timeout + 60_000;
  let shown = -1;
  while (Date.now() < deadline) {
    await sleep(200);
    const s = readClusterState(dir);
    if (s && s.supervisor_pid === pid) {
      const healthy = s.processes.filter((p) => p.healthy);
      if (s.status === 'starting' && healthy.length !== shown) {
        shown = healthy.length;
        const waiting = s.processes.filter((p) => !p.healthy).map((p) => p.name);
        process.stderr.write(
          `  ${healthy.length}/${s.processes.length} healthy${waiting.length ? `; waiting for ${waiting.slice(0, 4).join(', ')}${waiting.length > 4 ? ', …' : ''}` : ''}\n`,
        );
      }
      if (s.status === 'ready') {
        process.stdout.write(`${formatState(s)}\nlogs: ${join(dir, 'logs')}; stop with \`weft cluster stop\`\n`);
        return 0;
      }
      if (s.status === 'failed' || s.status === 'stopped') {
        process.stderr.write(`weft: the cluster did not start: ${s.error ?? s.status}\n`);
        return 1;
      }
    }
    if (!isAlive(pid)) {
      process.stderr.write(`weft: the cluster supervisor (pid ${pid}) exited during start; the end of ${logFile}:\n${tail(logFile)}\n`);
      return 1;
    }
  }
  process.stderr.write(`weft: the cluster was not ready in time; stopping it (see ${logFile})\n`);
  process.kill(pid, 'SIGTERM');
  return 1;
}

export async function stopCluster(config: WeftConfig): Promise<number> {
  const dir = clusterDir(config);
  const s = readClusterState(dir);
  if (!s) {
    process.stdout.write(`no cluster state under ${dir}; nothing to stop\n`);
    return 0;
  }
  if (isAlive(s.supervisor_pid) && s.supervisor_pid !== process.pid) {
    process.kill(s.supervisor_pid, 'SIGTERM');
    const deadline = Date.now() + 60_000;
    while (isAlive(s.supervisor_pid) && Date.now() < deadline) await sleep(100);
  }
  // A supervisor that was SIGKILLed leaves its children: stop them by the pids it recorded.
  const left = (readClusterState(dir)?.processes ?? s.processes).filter((p) => isAlive(p.pid));
  for (const p of left) {
    try {
      process.kill(p.pid!, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  const deadline = Date.now() + 15_000;
  while (left.some((p) => isAlive(p.pid)) && Date.now() < deadline) await sleep(100);
  for (const p of left) if (isAlive(p.pid)) process.kill(p.pid!, 'SIGKILL');
  process.stdout.write(`cluster stopped (supervisor pid ${s.supervisor_pid}${left.length ? `, ${left.length} orphaned process(es) stopped by pid` : ''})\n`);
  return 0;
}

export async function clusterStatus(config: WeftConfig, json: boolean): Promise<number> {
  const s = readClusterState(clusterDir(config));
  if (!s || !isAlive(s.supervisor_pid)) {
    process.stdout.write(json ? `${JSON.stringify({ running: false })}\n` : 'no cluster running\n');
    return 3;
  }
  for (const p of s.processes) {
    p.healthy =
      isAlive(p.pid) &&
      (await getJson(`${p.url}/health`, 1000).then(
        (r) => r.status === 200,
        () => false,
      ));
  }
  process.stdout.write(json ? `${JSON.stringify({ running: true, ...s }, null, 2)}\n` : `${formatState(s)}\n`);
  return s.processes.every((p) => p.healthy) ? 0 : 3;
}
