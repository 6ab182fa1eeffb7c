import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { loadTemplateDir } from '../../src/core/template/load.js';
import { packageRoot } from '../../src/shared/paths.js';
import { PermanentError, batches, type StepHandler } from '../../src/worker/sdk.js';

export const FIXTURES = join(packageRoot(), 'test', 'e2e', 'fixtures');

/** A native handler's error class, as the dashboard shows it. */
class InventoryError extends Error {
  override name = 'InventoryError';
}

/** Native handlers of the fixture templates: real behaviour, slow on purpose. */
export const fixtureHandlers: Record<string, StepHandler> = {
  'ui.sleep': (async (step: { context: { delay_ms?: number }; inputs: { label?: string } }) => {
    await new Promise((r) => setTimeout(r, step.context.delay_ms ?? 200));
    return { slept_ms: step.context.delay_ms ?? 200, label: step.inputs.label ?? null };
  }) as unknown as StepHandler,
  // Fails its first context.failures attempts (attempt numbers go on across retries of the task).
  'ui.flaky': ((step: { attempt: number; context: { failures?: number } }) => {
    if (step.attempt <= (step.context.failures ?? 1)) throw new InventoryError(`sku A-42 is not in the warehouse (attempt ${step.attempt})`);
    return { attempt: step.attempt };
  }) as unknown as StepHandler,
  'ui.split': ((step: { context: { workers?: number } }) =>
    batches(Array.from({ length: step.context.workers ?? 5 }, (_, i) => ({ item: i + 1 })))) as unknown as StepHandler,
  'ui.work': ((step: { context: { fail?: number[] }; batch: { cursor: { item: number } } }) => {
    if (step.context.fail?.includes(step.batch.cursor.item)) throw new PermanentError(`item ${step.batch.cursor.item} is refused`);
    return { item: step.batch.cursor.item };
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
 * on a fresh database. `leaseMs`: how soon a silent worker's steps are run
 * again (the test of a lost worker shortens it); `namespaces`: those the
 * in-process workers serve (default ui_e2e).
 */
export async function startDashboard(opts: { leaseMs?: number; namespaces?: string[] } = {}): Promise<Dashboard> {
  const tdb = await createTestDatabase();
  const templates = await loadTemplateDir(join(FIXTURES, 'templates'));
  // The in-process workers serve ui_e2e; ui_lost is left to `weft worker` processes a test starts (and kills).
  const engine = await startEngine({
    backend: 'pg',
    url: tdb.url,
    templates,
    handlers: fixtureHandlers,
    namespaces: opts.namespaces ?? ['ui_e2e'],
    leaseMs: opts.leaseMs,
  });
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

export { spawnWeft, type WeftProcess } from '../support/weft-process.js';
