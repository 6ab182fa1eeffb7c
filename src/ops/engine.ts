import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { WeftConfig } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { processId } from '../shared/ids.js';
import { connectStore, type Store } from './connect-store.js';
import { createMessageBus } from '../messaging/index.js';
import type { MessageBus } from '../messaging/types.js';
import { Orchestrator } from '../orchestration/orchestrator.js';
import { loadTemplateDir } from '../core/template/load.js';
import { Worker } from '../worker/worker.js';
import { createRunner } from '../worker/runners.js';

/** Where each runtime's handlers live under the --handlers directory. */
export const HANDLER_DIRS: Record<string, string> = { native: 'typescript', typescript: 'typescript', python: 'python', ruby: 'ruby' };

export interface EmbeddedEngine {
  store: Store;
  bus: MessageBus;
  orchestrator: Orchestrator;
  workers: Worker[];
  /** Start a worker for each of these runtimes not running yet, serving `namespaces` (all when omitted). */
  addWorkers(runtimes: Iterable<string>, namespaces?: string[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * An orchestrator and workers in this process (on the embedded PostgreSQL
 * unless WEFT_DATABASE_URL is set): what `weft run` and `weft dashboard`
 * use when no orchestrator is given.
 */
export async function startEmbeddedEngine(
  config: WeftConfig,
  log: Logger,
  opts: { templates: string; handlers: string; name: string; store?: Store },
): Promise<EmbeddedEngine> {
  const store = opts.store ?? (await connectStore(config, log));
  const bus = createMessageBus(config, store.db, log);
  const orchestrator = new Orchestrator({
    db: store.db,
    bus,
    log,
    processId: processId(opts.name),
    pollIntervalMs: config.pollIntervalMs,
    leaseMs: config.leaseMs,
    maxLosses: config.maxLosses,
    retentionMs: config.retentionMs,
    vacuumIntervalMs: config.vacuumIntervalMs,
  });
  const workers: Worker[] = [];
  const engine: EmbeddedEngine = {
    store,
    bus,
    orchestrator,
    workers,
    async addWorkers(runtimes, namespaces) {
      for (const runtime of runtimes) {
        if (workers.some((w) => w.runtime === runtime)) continue;
        const runner = await createRunner(runtime, join(opts.handlers, HANDLER_DIRS[runtime]!), log, config.bridge, undefined, config.dependencies);
        const worker = new Worker({ db: store.db, bus, log, runner, workerId: processId(`${opts.name}-${runtime}`), namespaces, leaseMs: config.leaseMs });
        await worker.start();
        workers.push(worker);
      }
    },
    async stop() {
      await Promise.all(workers.map((w) => w.stop(5_000)));
      await orchestrator.stop();
      await bus.close();
      await store.close();
    },
  };
  try {
    if (existsSync(opts.templates)) await orchestrator.registerTemplates(await loadTemplateDir(opts.templates));
    await orchestrator.start();
  } catch (err) {
    await engine.stop().catch(() => undefined);
    throw err;
  }
  return engine;
}
