import type { WeftConfig } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { processId } from '../shared/ids.js';
import { connectStore } from '../ops/connect-store.js';
import { createMessageBus } from '../messaging/index.js';
import { Orchestrator } from '../orchestration/orchestrator.js';
import { loadTemplateDir } from '../core/template/load.js';
import { serveApi } from './serve-api.js';
import { onShutdownSignal } from './lifecycle.js';

/** `weft orchestrator`: HTTP API + result processing until SIGTERM. */
export async function runOrchestrator(config: WeftConfig, log: Logger, opts: { port: number; host: string; templates?: string; insecure?: boolean }): Promise<void> {
  const templates = opts.templates ? await loadTemplateDir(opts.templates) : [];
  const store = await connectStore(config, log, { applicationName: 'weft-orchestrator' });
  const bus = createMessageBus(config, store.db, log);
  const orchestrator = new Orchestrator({
    db: store.db,
    bus,
    log,
    processId: processId('orchestrator'),
    pollIntervalMs: config.pollIntervalMs,
    leaseMs: config.leaseMs,
    maxLosses: config.maxLosses,
    redispatchAfterMs: config.redispatchAfterMs,
    retentionMs: config.retentionMs,
    vacuumIntervalMs: config.vacuumIntervalMs,
  });
  await orchestrator.registerTemplates(templates);
  await orchestrator.start();
  const api = await serveApi({ orchestrator, db: store.db, bus, log, host: opts.host, port: opts.port, insecure: opts.insecure, createPerMinute: config.taskRateLimitPerMinute }).catch(async (err) => {
    await orchestrator.stop();
    await bus.close();
    await store.close();
    throw err;
  });
  log.info({ url: api.url, dashboard: `${api.url}/`, messaging: bus.backend, database: store.source }, 'orchestrator listening');
  onShutdownSignal(log, async () => {
    await api.close();
    await orchestrator.stop();
    await bus.close();
    await store.close();
  });
}
