/**
 * The real `weft` CLI as a child process (`node --import tsx src/cli/main.ts ...` from the repo root):
 * validate (good, bad, missing), migrate on a URL, and migrate on the embedded default (issue 2, "Done
 * when": `npx weft validate` and `npx weft migrate` work on both the embedded default and a URL).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminUrl, databaseUrl, runId } from '../support/urls.js';
import { acquireEmbeddedPostgres } from '../../src/ops/embedded-postgres.js';
import { readMigrations } from '../../src/store/migrate.js';
import { readFunctionFiles } from '../../src/store/function-files.js';
import { SETTINGS } from '../../src/shared/settings.js';
import { runCommand } from '../support/weft-process.js';

// What `weft migrate` applies to an empty database: every migration there is, in order.
const MIGRATIONS = await readMigrations();
// ... and then every function file of sql/functions.
const ALL_NAMES = `${MIGRATIONS.map((m) => m.name).join(', ')}; functions ${(await readFunctionFiles()).map((f) => f.name).join(', ')}`;
const LATEST = Math.max(...MIGRATIONS.map((m) => m.version));

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const COMMAND_TIMEOUT_MS = 90_000;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `env` added to (or, for `undefined` values, removed from) this process's environment. */
async function weft(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, WEFT_LOG_FORMAT: 'json' };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repoRoot,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<Run>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`weft ${args.join(' ')} did not exit within ${COMMAND_TIMEOUT_MS} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`)),
        COMMAND_TIMEOUT_MS,
      );
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function freePort(): Promise<number> {
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

async function admin(sql: string): Promise<void> {
  const c = new pg.Client(adminUrl());
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

let tmpRoot: string;
const homes: string[] = [];
const databases: string[] = [];

beforeAll(async () => {
  tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'weft-cli-'));
  // The embedded server runs as `postgres` when we are root: every directory on the way must be traversable.
  await fs.chmod(tmpRoot, 0o755);
  for (let dir = path.dirname(tmpRoot); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const mode = (await fs.stat(dir)).mode;
    if ((mode & 0o001) === 0) throw new Error(`${dir} (mode ${(mode & 0o777).toString(8)}) is not traversable by other users; set TMPDIR elsewhere`);
  }
});

afterAll(async () => {
  // A server a failed test left running: stop it by its pid (SIGINT = fast shutdown), bounded.
  for (const home of homes) {
    const pidFile = path.join(home, 'pg', 'postmaster.pid');
    if (!existsSync(pidFile)) continue;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n', 1)[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) continue;
    process.kill(pid, 'SIGINT');
    const deadline = Date.now() + 30_000;
    while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  if (tmpRoot) await fs.rm(tmpRoot, { recursive: true, force: true });
  for (const name of databases) await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
});

describe('weft --help', () => {
  it('lists every command and the environment variables', async () => {
    const r = await weft(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['validate', 'migrate', 'orchestrator', 'worker', 'run']) {
      expect(r.stdout).toMatch(new RegExp(`^\\s+${cmd}\\b`, 'm'));
    }
    expect(r.stdout).toContain('Usage: weft');
    for (const setting of SETTINGS) expect(r.stdout).toContain(setting.name);
    expect(r.stdout).toMatch(/Exit codes: 0 done, 1 failed/);
  });

  it('every command takes --json, and one started only to fail prints its error as JSON on stdout', async () => {
    // The real program's command tree: commander's parseAsync replaced by a walk that prints each leaf command and its options.
    const walk = `import { Command } from 'commander';
Command.prototype.parseAsync = async function () {
  const leaves = (c, path) => c.commands.length ? c.commands.flatMap((s) => leaves(s, [...path, s.name()])) : [{ path: path.join(' '), options: c.options.map((o) => o.long) }];
  process.stdout.write(JSON.stringify(leaves(this, [])));
  return this;
};
await import('./src/cli/main.ts');`;
    const tree = await runCommand(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', walk], {});
    expect(tree.stderr).toBe('');
    const commands = JSON.parse(tree.stdout) as Array<{ path: string; options: string[] }>;
    for (const c of [
      'validate',
      'migrate',
      'orchestrator',
      'worker',
      'run',
      'task list',
      'task show',
      'task wait',
      'templates push',
      'token create',
      'dashboard',
    ])
      expect(commands.map((x) => x.path)).toContain(c);
    expect(commands.filter((c) => !c.options.includes('--json')).map((c) => c.path)).toEqual([]);
    // A command without JSON output of its own (a worker): its error is the one document on stdout.
    const r = await weft(['worker', '--handlers', '/nonexistent-weft-handlers', '--json'], { WEFT_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({
      error: {
        code: 'config_invalid',
        message:
          "cannot read the handlers directory /nonexistent-weft-handlers: ENOENT: no such file or directory, scandir '/nonexistent-weft-handlers'; pass --handlers DIR with your handler modules",
      },
    });
  });

  it('--version prints the package version', async () => {
    const r = await weft(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version);
  });

  it.each([
    [
      ['worker', '--handlers', 'handlers/typescript', '--concurrency', 'lots'],
      "'--concurrency <n>' argument 'lots' is invalid. expected a whole number from 1 to 10000",
    ],
    [['run', 'e2e_linear/mathematical_sequence', '--timeout', '1.5'], "'--timeout <ms>' argument '1.5' is invalid. expected a whole number ≥ 1"],
    [['orchestrator', '--port', '70000'], "'--port <port>' argument '70000' is invalid. expected a whole number from 0 to 65535"],
  ])('a numeric option that is not a number in range is refused before anything starts: weft %j', async (args, message) => {
    const r = await weft(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
  });
});

describe('weft validate', () => {
  it('validate templates: exits 0 and prints one ok line per template file', async () => {
    const files = (await fs.readdir(path.join(repoRoot, 'templates'), { recursive: true }))
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => path.join('templates', f))
      .sort();
    expect(files.length).toBeGreaterThan(0);
    const r = await weft(['validate', 'templates']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(files.length);
    for (const line of lines) expect(line).toMatch(/^ok {2}\S+\.ya?ml {2}[a-z][a-z0-9_]*\/[a-z][a-z0-9_]*@\d+\.\d+\.\d+ \(\d+ steps?\)$/);
    expect(lines.map((l) => l.split(/\s+/)[1]).sort()).toEqual(files);
    expect(lines).toContain('ok  templates/diamond.yaml  e2e_diamond/diamond_pattern@1.0.0 (4 steps)');
  });

  it('a bad file: exits 1 and prints every problem with the file, line, column and field path', async () => {
    const file = path.join(tmpRoot, 'bad.yaml');
    await fs.writeFile(
      file,
      [
        'namespace: bad_ns',
        'name: bad',
        'version: 1.0.0',
        'steps:',
        '  - name: a',
        '    handler: x.a',
        '  - name: b',
        '    handler: x.b',
        '    depends_on: [zzz]',
        '    retry: { max_attempts: 0 }',
        '  - name: c',
        '    handler: x.c',
        '    depnds_on: [a]',
        '',
      ].join('\n'),
    );
    const r = await weft(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines).toContain(
      `template ${file}:9:18: steps[1].depends_on names "zzz", which is not a step of this template; steps are: a, b, c — fix: add a step named "zzz" or remove it from depends_on`,
    );
    expect(lines).toContain(
      `template ${file}:10:28: steps[1].retry.max_attempts is 0, out of range; it must be between 1 and 100 — fix: set max_attempts to a value between 1 and 100`,
    );
    expect(lines).toContain(`template ${file}:13:5: unknown field "depnds_on" in steps[2]; did you mean "depends_on"? — fix: rename it to "depends_on"`);
  });

  it('a good and a bad file together: the good one is ok, the exit code is 1', async () => {
    const file = path.join(tmpRoot, 'syntax.yaml');
    await fs.writeFile(file, 'namespace: x\nname: [unclosed\n');
    const r = await weft(['validate', 'templates/linear.yaml', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('ok  templates/linear.yaml  e2e_linear/mathematical_sequence@1.0.0 (4 steps)\n');
    expect(r.stderr).toMatch(new RegExp(`^template ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `));
  });

  it('a missing path: exits 2 and says the path does not exist', async () => {
    const missing = path.join(tmpRoot, 'no-such-template.yaml');
    const r = await weft(['validate', missing]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`weft validate: ${missing} does not exist; give the path of a template file or a directory of templates\n`);
  });

  it('a directory with no templates: exits 1 and says so', async () => {
    const dir = path.join(tmpRoot, 'empty-dir');
    await fs.mkdir(dir);
    const r = await weft(['validate', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`weft validate: ${dir} holds no .yaml or .yml files\n`);
  });

  it('two files defining the same namespace/name@version: exits 1 naming both files', async () => {
    const dir = path.join(tmpRoot, 'dup-dir');
    await fs.mkdir(dir);
    const source = await fs.readFile(path.join(repoRoot, 'templates', 'linear.yaml'), 'utf8');
    await fs.writeFile(path.join(dir, 'a.yaml'), source);
    await fs.writeFile(path.join(dir, 'b.yaml'), source);
    const r = await weft(['validate', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `template ${dir}/b.yaml: e2e_linear/mathematical_sequence@1.0.0 is also defined by ${dir}/a.yaml; a namespace/name@version may be defined once — fix: change the namespace, name or version of one of the two files\n`,
    );
  });

  it('no path at all: commander refuses with the usage error', async () => {
    const r = await weft(['validate']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: missing required argument 'paths'");
  });
});

describe('weft migrate with WEFT_DATABASE_URL', () => {
  it('applies every migration to a fresh database; a second run says it is up to date', async () => {
    const name = `weft_t_${runId()}_cli_${randomBytes(4).toString('hex')}`;
    await admin(`CREATE DATABASE ${name}`);
    databases.push(name);
    const url = databaseUrl(name);
    // (error: a cold pool's first connect may log a slow-acquire warning, which is not what this test is about)
    const env = { WEFT_DATABASE_URL: url, WEFT_LOG_LEVEL: 'error' };

    const first = await weft(['migrate'], env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toBe(`applied ${ALL_NAMES} to ${url}; schema is at version ${LATEST}\n`);

    const c = new pg.Client(url);
    await c.connect();
    try {
      const { rows } = await c.query('SELECT version, name FROM weft.schema_migrations ORDER BY version');
      expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    } finally {
      await c.end();
    }

    const second = await weft(['migrate'], env);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(`${url} is up to date (schema version ${LATEST})\n`);
  });

  it('a database that does not exist: exits 1 with a DatabaseError that says how to fix the URL', async () => {
    const url = databaseUrl(`weft_t_${runId()}_missing_${randomBytes(4).toString('hex')}`);
    const r = await weft(['migrate'], { WEFT_DATABASE_URL: url, WEFT_LOG_LEVEL: 'warn' });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`weft: cannot connect to PostgreSQL at ${url}: database "${new URL(url).pathname.slice(1)}" does not exist.`);
    expect(r.stderr).toContain('Check WEFT_DATABASE_URL');
  });
});

describe('weft migrate on the embedded PostgreSQL (no WEFT_DATABASE_URL)', () => {
  // Only root runs the server as another user (`postgres`), who then needs to traverse the home's parents.
  it.runIf(process.getuid?.() === 0)('as root, a WEFT_HOME under a directory postgres cannot enter: exits 1 with the chmod fix, starts nothing', async () => {
    const locked = path.join(tmpRoot, 'locked');
    await fs.mkdir(locked, { mode: 0o700 });
    await fs.chmod(locked, 0o700);
    const home = path.join(locked, 'home');
    await fs.mkdir(home, { mode: 0o755 });
    homes.push(home);
    const r = await weft(['migrate'], {
      WEFT_DATABASE_URL: undefined,
      WEFT_HOME: home,
      WEFT_EMBEDDED_PG_PORT: String(await freePort()),
      WEFT_LOG_LEVEL: 'warn',
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^weft: the embedded PostgreSQL runs as the system user "postgres" \(uid \d+\) because weft runs as root, /);
    expect(r.stderr).toContain(`cannot enter ${locked} (mode 0700, owner uid 0), which lies on the way to ${home}; fix it with: chmod o+x ${locked}`);
    // Nothing left behind: no data directory, no lock, no client entry.
    expect(existsSync(path.join(home, 'pg', 'PG_VERSION'))).toBe(false);
    expect(existsSync(path.join(home, 'pg.lock'))).toBe(false);
    expect(await fs.readdir(path.join(home, 'pg-clients'))).toEqual([]);
  });

  it('starts it, migrates it and stops it when the command exits; a second run reuses the data', async () => {
    const home = path.join(tmpRoot, 'home');
    await fs.mkdir(home, { mode: 0o755 });
    await fs.chmod(home, 0o755);
    homes.push(home);
    const port = await freePort();
    const env = { WEFT_DATABASE_URL: undefined, WEFT_HOME: home, WEFT_EMBEDDED_PG_PORT: String(port), WEFT_LOG_LEVEL: 'info' };

    const first = await weft(['migrate'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe(`applied ${ALL_NAMES} to embedded PostgreSQL (${home}/pg); schema is at version ${LATEST}\n`);
    expect(first.stderr).toContain(`initialising embedded PostgreSQL in ${home}/pg`);
    expect(first.stderr).toContain(`starting embedded PostgreSQL on 127.0.0.1:${port}`);
    const record = JSON.parse(await fs.readFile(path.join(home, 'pg-embedded.json'), 'utf8')) as { port: number; pid: number | null };
    expect(record.port).toBe(port);
    // The postmaster this run started (named in its stop message) is gone, and so is the port.
    const stopped = /stopping embedded PostgreSQL \(pid (\d+)\)/.exec(first.stderr);
    expect(stopped, first.stderr).not.toBeNull();
    const postmaster = Number(stopped![1]);
    expect(isAlive(postmaster)).toBe(false);
    expect(record.pid).toBeNull();
    expect(existsSync(path.join(home, 'pg', 'postmaster.pid'))).toBe(false);
    expect(await refusesConnections(port)).toBe(true);

    const second = await weft(['migrate'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe(`embedded PostgreSQL (${home}/pg) is up to date (schema version ${LATEST})\n`);
    expect(second.stderr).not.toContain('initialising embedded PostgreSQL');
    expect(second.stderr).toContain(`starting embedded PostgreSQL on 127.0.0.1:${port}`);
    const again = /stopping embedded PostgreSQL \(pid (\d+)\)/.exec(second.stderr);
    expect(again, second.stderr).not.toBeNull();
    expect(isAlive(Number(again![1]))).toBe(false);
    expect(existsSync(path.join(home, 'pg', 'postmaster.pid'))).toBe(false);
    expect(await refusesConnections(port)).toBe(true);
  });
  it('when another weft process already runs the embedded server, weft migrate reuses it and leaves it running', async () => {
    const home = path.join(tmpRoot, 'shared-home');
    await fs.mkdir(home, { mode: 0o755 });
    await fs.chmod(home, 0o755);
    homes.push(home);
    const port = await freePort();
    // This test process plays the other weft process.
    const held = await acquireEmbeddedPostgres({ home, port });
    let released = false;
    try {
      expect(held.startedByUs).toBe(true);
      const postmaster = Number(readFileSync(path.join(home, 'pg', 'postmaster.pid'), 'utf8').split('\n', 1)[0]);
      expect(isAlive(postmaster)).toBe(true);

      const r = await weft(['migrate'], { WEFT_DATABASE_URL: undefined, WEFT_HOME: home, WEFT_LOG_LEVEL: 'info' });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`applied ${ALL_NAMES} to embedded PostgreSQL (${home}/pg); schema is at version ${LATEST}\n`);
      expect(r.stderr).toContain(`reusing embedded PostgreSQL on 127.0.0.1:${port} (pid ${postmaster}`);
      expect(r.stderr).not.toContain('stopping embedded PostgreSQL');
      // Still up for us: same postmaster, and the migrated schema is there.
      expect(isAlive(postmaster)).toBe(true);
      const c = new pg.Client(held.url);
      await c.connect();
      try {
        const { rows } = await c.query('SELECT name FROM weft.schema_migrations ORDER BY version');
        expect(rows).toEqual(MIGRATIONS.map((m) => ({ name: m.name })));
      } finally {
        await c.end();
      }

      await held.release();
      released = true;
      // We were the last user: now it stops.
      expect(isAlive(postmaster)).toBe(false);
      expect(await refusesConnections(port)).toBe(true);
    } finally {
      if (!released) await held.release();
    }
  });
});
