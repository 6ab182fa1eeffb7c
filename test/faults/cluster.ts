/**
 * The fault suite's own services (issue 9): a PostgreSQL cluster and a
 * RabbitMQ node that nobody else uses, in temp dirs, on free ports, so the
 * suite may crash, stop and restart them without touching the shared ones
 * on 5432 and 5672 that other test runs depend on.
 *
 * Every process started here is remembered by pid and stopped by pid in
 * `stop()`, which the suite calls from afterAll whatever happened.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { promisify } from 'node:util';
import { freePort } from '../support/ports.js';

const run = promisify(execFile);

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(2_000, () => (s.destroy(), resolve(false)));
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Poll `ok` until it is true; an error it throws ends the wait at once (a process that exited, say). */
export async function until(what: string, ok: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/** uid/gid to run PostgreSQL as: it refuses to run as root, so root runs it as `postgres`. */
async function postgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const { stdout: uid } = await run('id', ['-u', 'postgres']);
  const { stdout: gid } = await run('id', ['-g', 'postgres']);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

function postgresBin(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'postgres'))) : [];
  if (versions.length === 0) {
    throw new Error(`no PostgreSQL server binaries under ${base}/*/bin; install the postgresql package (apt-get install postgresql)`);
  }
  versions.sort((a, b) => Number(b) - Number(a));
  return join(base, versions[0]!, 'bin');
}

/** A private PostgreSQL cluster (fsync on) that can be crashed and restarted. */
export class PrivatePostgres {
  readonly dir: string;
  port = 0;
  private child?: ChildProcess;
  private owner?: { uid: number; gid: number };
  private log = '';
  private readonly bin = postgresBin();

  constructor(root: string) {
    this.dir = join(root, 'pg');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async init(): Promise<void> {
    this.owner = await postgresUser();
    mkdirSync(this.dir, { recursive: true });
    if (this.owner) chownSync(this.dir, this.owner.uid, this.owner.gid);
    this.port = await freePort();
    await run(join(this.bin, 'initdb'), ['-D', this.dir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], {
      ...(this.owner ?? {}),
      cwd: this.dir,
    });
  }

  /**
   * Start the postmaster. After a kill -9 its old backends may still hold the
   * shared memory for a moment ("pre-existing shared memory block is still in
   * use"): such a refusal is tried again for up to `retryMs`.
   */
  async start(retryMs = 0): Promise<void> {
    const deadline = Date.now() + retryMs;
    for (;;) {
      try {
        return await this.startOnce();
      } catch (err) {
        if (Date.now() > deadline || !/still in use|lock file|already running/i.test(String(err))) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async startOnce(): Promise<void> {
    this.log = '';
    const child = spawn(
      join(this.bin, 'postgres'),
      [
        '-D',
        this.dir,
        '-p',
        String(this.port),
        '-k',
        this.dir,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=on',
        '-c',
        'max_connections=200',
        '-c',
        'shared_buffers=64MB',
      ],
      { ...(this.owner ?? {}), cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (c: Buffer) => (this.log += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (this.log += c.toString()));
    this.child = child;
    await until(
      `PostgreSQL on port ${this.port} (log: ${this.log.slice(-500)})`,
      async () => {
        if (child.exitCode !== null) throw new Error(`PostgreSQL exited ${child.exitCode}: ${this.log.slice(-2000)}`);
        return this.log.includes('ready to accept connections');
      },
      60_000,
    );
  }

  /** The crash of `pg_ctl stop -m immediate`: SIGQUIT to the postmaster, no checkpoint; WAL recovery at the next start. */
  crash(): Promise<void> {
    return this.signal('SIGQUIT');
  }

  /** kill -9 of the postmaster: its backends notice it is gone and exit by themselves. */
  kill9(): Promise<void> {
    return this.signal('SIGKILL');
  }

  /** At the end of the suite: an immediate stop (nothing to keep), SIGKILL should it hang. */
  stop(): Promise<void> {
    return this.signal('SIGQUIT');
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(sig);
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited(child);
    clearTimeout(killer);
    this.child = undefined;
  }
}

/** A private RabbitMQ node (no plugins) in a temp dir, started detached and stopped with `rabbitmqctl -n NODE stop`. */
export class PrivateRabbit {
  readonly node: string;
  port = 0;
  private distPort = 0;
  private readonly dir: string;
  private readonly bin: string;

  constructor(root: string) {
    this.dir = join(root, 'rabbitmq');
    this.node = `weft_faults_${process.pid}@localhost`;
    // Call the real scripts, not the /usr/sbin wrappers: as root those `su` to
    // the rabbitmq user, whose home holds the shared node's Erlang cookie.
    this.bin = existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server') ? '/usr/lib/rabbitmq/bin' : '';
  }

  url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      HOME: join(this.dir, 'home'),
      RABBITMQ_NODENAME: this.node,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_MNESIA_BASE: join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(this.dir, 'log'),
      RABBITMQ_PID_FILE: join(this.dir, 'pid'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(this.dir, 'enabled_plugins'),
      RABBITMQ_CONFIG_FILE: join(this.dir, 'rabbitmq'),
      RABBITMQ_CONF_ENV_FILE: join(this.dir, 'rabbitmq-env.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(this.dir, 'advanced.config'),
    };
  }

  private cmd(name: string): string {
    return this.bin ? join(this.bin, name) : name;
  }

  get pid(): number | undefined {
    try {
      return Number(readFileSync(join(this.dir, 'pid'), 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  }

  async init(): Promise<void> {
    for (const d of ['home', 'mnesia', 'log']) mkdirSync(join(this.dir, d), { recursive: true });
    writeFileSync(join(this.dir, 'enabled_plugins'), '[].\n');
    writeFileSync(join(this.dir, 'rabbitmq-env.conf'), '');
    writeFileSync(join(this.dir, 'advanced.config'), '[].\n');
    this.port = await freePort();
    this.distPort = await freePort();
    writeFileSync(join(this.dir, 'rabbitmq.conf'), `listeners.tcp.1 = 127.0.0.1:${this.port}\n`);
  }

  async start(): Promise<void> {
    await run(this.cmd('rabbitmq-server'), ['-detached'], { env: this.env(), cwd: this.dir });
    await run(this.cmd('rabbitmqctl'), ['-n', this.node, 'wait', join(this.dir, 'pid'), '--timeout', '60'], {
      env: this.env(),
      cwd: this.dir,
      timeout: 70_000,
    });
    await until(`RabbitMQ on port ${this.port}`, () => portOpen(this.port), 30_000);
  }

  /** kill -9 of the node's Erlang VM: no clean shutdown, messages not yet on disk are gone. */
  async kill9(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || !alive(pid)) return;
    process.kill(pid, 'SIGKILL');
    await until(`RabbitMQ pid ${pid} to exit`, async () => !alive(pid), 10_000);
  }

  async stop(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || !alive(pid)) return;
    await run(this.cmd('rabbitmqctl'), ['-n', this.node, 'stop', join(this.dir, 'pid')], { env: this.env(), cwd: this.dir, timeout: 30_000 }).catch(
      () => undefined,
    );
    if (alive(pid)) {
      process.kill(pid, 'SIGKILL');
      await until(`RabbitMQ pid ${pid} to exit`, async () => !alive(pid), 10_000);
    }
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The suite's temp root, removed by `removeRoot`. */
export function makeRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'weft-faults-'));
  // PostgreSQL runs as `postgres` under root: it must reach its data dir inside.
  chmodSync(root, 0o755);
  return root;
}

export function removeRoot(root: string): void {
  rmSync(root, { recursive: true, force: true });
}
