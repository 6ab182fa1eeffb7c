import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { loadTemplateDir } from '../../src/core/template/load.js';
import { packageRoot } from '../../src/shared/paths.js';
import type { StepHandler } from '../../src/worker/sdk.js';

export const FIXTURES = join(packageRoot(), 'test', 'e2e', 'fixtures');

/** Native handlers of the fixture templates: real behaviour, slow on purpose. */
export const fixtureHandlers: Record<string, StepHandler> = {
  'ui.sleep': (async (step: { context: { delay_ms?: number }; inputs: { label?: string } }) => {
    await new Promise((r) => setTimeout(r, step.context.delay_ms ?? 200));
    return { slept_ms: step.context.delay_ms ?? 200, label: step.inputs.label ?? null };
  }) as unknown as StepHandler,
};

export interface Dashboard {
  tdb: TestDatabase;
  engine: Engine;
  api: FastifyInstance;
  url: string;
  stop(): Promise<void>;
}

/**
 * A real orchestrator (in this process, as test/support/engine.ts makes
 * them) with native workers, its API and dashboard on a free loopback port,
 * on a fresh database.
 */
export async function startDashboard(): Promise<Dashboard> {
  const tdb = await createTestDatabase();
  const templates = await loadTemplateDir(join(FIXTURES, 'templates'));
  const engine = await startEngine({ backend: 'pg', url: tdb.url, templates, handlers: fixtureHandlers });
  const log = silentLogger();
  const orchestrator = engine.orchestrators[0]!;
  const api = buildApi({ orchestrator, db: engine.db, bus: new PgMessageBus(engine.db, log), log });
  await api.listen({ host: '127.0.0.1', port: 0 });
  const address = api.server.address() as { port: number };
  return {
    tdb,
    engine,
    api,
    url: `http://127.0.0.1:${address.port}`,
    async stop() {
      await api.close();
      await engine.stop();
      await tdb.drop();
    },
  };
}

export interface WeftProcess {
  pid: number;
  child: ChildProcess;
  output(): string;
  /** SIGTERM (or `signal`) this process by its pid and wait for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** The real `weft` CLI as a child process against the test database. */
export function spawnWeft(args: string[], env: Record<string, string>): WeftProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: packageRoot(),
    env: { ...process.env, WEFT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid!,
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid!, signal);
        } catch {
          /* already gone */
        }
        const killer = setTimeout(() => {
          try {
            process.kill(child.pid!, 'SIGKILL');
          } catch {
            /* gone */
          }
        }, 10_000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
}
