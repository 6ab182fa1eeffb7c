/**
 * deploy/entrypoint.sh, the script weft's image runs (deploy/Dockerfile), run
 * here without Docker against the test database: migrate, an orchestrator
 * and a Python worker (the embedded interpreter, as in the image), their
 * /health through the script's own health check (what compose's health
 * checks run), a task through the API, and SIGTERM reaching weft itself
 * (the script execs it), so a worker drains and exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { freePort, until } from '../support/tcp-proxy.js';
import { packageRoot } from '../../src/shared/paths.js';

const script = join(packageRoot(), 'deploy', 'entrypoint.sh');

interface Run {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** The script as the image's init starts it: the file itself (its shebang), with the given environment only. */
function entrypoint(args: string[], env: Record<string, string>): Run {
  const child = spawn(script, args, {
    cwd: packageRoot(),
    env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', WEFT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function finish(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  const r = entrypoint(args, env);
  return { code: await r.exited, output: r.output() };
}

describe('deploy/entrypoint.sh, as the image runs it', () => {
  let tdb: TestDatabase;
  let env: Record<string, string>;
  const running: Run[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase();
    env = { WEFT_DATABASE_URL: tdb.url };
  });
  afterAll(async () => {
    for (const r of running) {
      if (r.child.exitCode === null && r.child.signalCode === null) process.kill(r.child.pid!, 'SIGKILL');
    }
    await tdb?.drop();
  });

  it('refuses an unknown role, and a weft role without WEFT_DATABASE_URL (a database inside a container dies with it)', async () => {
    const unknown = await finish(['serve']);
    expect(unknown.code).toBe(64);
    expect(unknown.output).toContain('entrypoint: unknown role "serve"; use orchestrator, worker, migrate, health URL, or weft ARGS...');
    const noDb = await finish(['worker', '--runtime', 'native', '--handlers', 'handlers/typescript']);
    expect(noDb.code).toBe(64);
    expect(noDb.output).toContain('entrypoint: WEFT_DATABASE_URL is not set');
  });

  it('migrate, then an orchestrator and a Python worker that pass their health checks and run a task; SIGTERM drains the worker', async () => {
    const migrated = await finish(['migrate'], env);
    expect(migrated.code, migrated.output).toBe(0);

    const apiPort = await freePort();
    const healthPort = await freePort();
    const orchestrator = entrypoint(['orchestrator', '--port', String(apiPort), '--templates', 'templates'], env);
    const worker = entrypoint(['worker', '--runtime', 'python', '--handlers', 'handlers/python', '--port', String(healthPort)], env);
    running.push(orchestrator, worker);

    const api = `http://127.0.0.1:${apiPort}`;
    for (const url of [`${api}/health`, `http://127.0.0.1:${healthPort}/health`]) {
      const healthy = await until(
        `${url} to pass the health check`,
        () => finish(['health', url]),
        (r) => r.code === 0,
        90_000,
      );
      expect(healthy.output).toBe('');
    }

    const created = await fetch(`${api}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'e2e_linear_py', name: 'mathematical_sequence', context: { even_number: 6 } }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const task = await until(
      'the task to end',
      async () =>
        (await (await fetch(`${api}/v1/tasks/${id}/wait?timeout_ms=5000`)).json()) as { state: string; ended: boolean; steps: Array<{ result: unknown }> },
      (t) => t.ended,
      60_000,
    );
    expect(task.state).toBe('complete');
    expect(task.steps.map((s) => s.result)).toContain(2821109907456);

    process.kill(worker.child.pid!, 'SIGTERM'); // the script's pid is weft's: it execs
    expect(await worker.exited).toBe(0);
    const down = await finish(['health', `http://127.0.0.1:${healthPort}/health`]);
    expect(down.code).toBe(1);
    expect(down.output).toContain(`http://127.0.0.1:${healthPort}/health did not answer`);
    process.kill(orchestrator.child.pid!, 'SIGTERM');
    expect(await orchestrator.exited).toBe(0);
  });

  it('health reports a 503 with the body that says why', async () => {
    const port = await freePort();
    const orchestrator = entrypoint(['orchestrator', '--port', String(port)], { WEFT_DATABASE_URL: tdb.url.replace('127.0.0.1:5432', '127.0.0.1:1') });
    running.push(orchestrator);
    const starting = await until(
      'the orchestrator to answer 503 while its database is unreachable',
      () => finish(['health', `http://127.0.0.1:${port}/health`]),
      (r) => r.output.includes('answered 503'),
      60_000,
    );
    expect(starting.code).toBe(1);
    expect(starting.output).toMatch(/answered 503: \{.*"status"/);
    process.kill(orchestrator.child.pid!, 'SIGTERM');
    await orchestrator.exited;
  });
});
