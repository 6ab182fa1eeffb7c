import Fastify from 'fastify';
import type { WeftConfig } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { processId } from '../shared/ids.js';
import { connectStore } from '../store/connect.js';
import { createMessageBus } from '../messaging/index.js';
import { Worker } from '../worker/worker.js';
import { createRunner } from '../worker/runners.js';
import { workerMetrics } from '../worker/metrics.js';
import { onShutdownSignal } from './lifecycle.js';

/** `weft worker`: serve one runtime's handlers until SIGTERM (drains in-flight steps); with --port, GET /health and /metrics. */
export async function runWorker(
  config: WeftConfig,
  log: Logger,
  opts: { runtime: string; handlers: string; namespaces?: string; concurrency: number; port?: number },
): Promise<void> {
  const runner = await createRunner(opts.runtime, opts.handlers, log, config.bridge);
  const store = await connectStore(config, log, { applicationName: `weft-worker-${opts.runtime}` });
  const bus = createMessageBus(config, store.db, log);
  const worker = new Worker({
    db: store.db,
    bus,
    log,
    runner,
    workerId: processId(`worker-${opts.runtime}`),
    namespaces: opts.namespaces?.split(',').map((s) => s.trim()).filter(Boolean),
    concurrency: opts.concurrency,
    leaseMs: config.leaseMs,
    info: opts.port !== undefined ? { port: opts.port } : {},
  });
  await worker.start();

  const health = opts.port !== undefined ? Fastify({ logger: false }) : undefined;
  if (health) {
    health.get('/health', async (_req, reply) => {
      const broken = runner.isBroken();
      return reply.status(broken ? 503 : 200).send({
        status: broken ? 'broken' : 'healthy',
        runtime: runner.runtime,
        namespaces: worker.namespaces(),
        in_flight: worker.inFlight(),
        counts: worker.counts,
      });
    });
    const metrics = workerMetrics(worker, runner);
    health.get('/metrics', async (_req, reply) => {
      reply.header('content-type', metrics.contentType);
      return metrics.metrics();
    });
    await health.listen({ port: opts.port!, host: '127.0.0.1' });
  }

  const shutdown = async () => {
    await health?.close();
    await worker.stop();
    await runner.close();
    await bus.close();
    await store.close();
  };
  // A runtime that cannot be trusted any more (a handler that would not stop)
  // ends the process, so its supervisor starts a fresh one; the stuck step
  // is retried elsewhere once its lease expires.
  worker.on('broken', (runtime: string) => {
    log.error({ runtime }, 'runtime is broken (a handler ignored its timeout); exiting so a fresh worker can take over');
    void shutdown().finally(() => process.exit(70));
  });
  onShutdownSignal(log, shutdown);
}
