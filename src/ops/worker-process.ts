import Fastify from 'fastify';
import type { WeftConfig } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { processId } from '../shared/ids.js';
import { untilReachable } from '../shared/retry.js';
import { connectStore, type Store } from './connect-store.js';
import { createMessageBus } from '../messaging/index.js';
import type { MessageBus } from '../messaging/types.js';
import { Worker } from '../worker/worker.js';
import { createRunner } from '../worker/runners.js';
import { workerMetrics } from '../worker/metrics.js';
import { stopOnSignal } from './lifecycle.js';

/**
 * `weft worker`: serve one runtime's handlers until SIGTERM (drains in-flight
 * steps); with --port, GET /health and /metrics.
 *
 * The health port is bound first, so a port clash stops the worker before it
 * claims anything. Started while PostgreSQL or the broker is down, it waits
 * for them with backoff (saying why in its log and in /health, which answers
 * 503 "starting" meanwhile) instead of exiting.
 */
export async function runWorker(
  config: WeftConfig,
  log: Logger,
  opts: { runtime: string; handlers: string; namespaces?: string; concurrency: number; port?: number },
): Promise<void> {
  const runner = await createRunner(opts.runtime, opts.handlers, log, config.bridge, opts.concurrency, config.dependencies);
  const starting = { waitingFor: 'database', reason: 'connecting' };
  let store: Store | undefined;
  let bus: MessageBus | undefined;
  let worker: Worker | undefined;
  let metricsRegistry: ReturnType<typeof workerMetrics> | undefined;

  const health = opts.port !== undefined ? Fastify({ logger: false }) : undefined;
  if (health) {
    health.get('/health', async (_req, reply) => {
      if (!worker || !store) {
        return reply.status(503).send({ status: 'starting', runtime: runner.runtime, waiting_for: starting.waitingFor, reason: starting.reason });
      }
      const broken = runner.isBroken();
      const fit = worker.health();
      const bridge = runner.stats?.() as { threads?: number; running?: number; stuck?: number } | undefined;
      const stuck = bridge?.stuck ?? 0;
      // Outcomes it cannot write make it unfit (503); stuck handlers only cost it their threads (200).
      const reasons = [
        ...(fit.status === 'degraded' ? [fit.reason] : []),
        ...(stuck > 0 ? [`${stuck} handler(s) stuck: they ignored a timeout or cancel; their threads were replaced`] : []),
      ];
      return reply.status(broken || fit.status !== 'healthy' ? 503 : 200).send({
        status: broken ? 'broken' : reasons.length ? 'degraded' : 'healthy',
        ...(reasons.length && !broken ? { reason: reasons.join('; ') } : {}),
        runtime: runner.runtime,
        database: { ...store.location, source: store.source },
        namespaces: worker.namespaces(),
        in_flight: worker.inFlight(),
        counts: worker.counts,
        ...(bridge ? { handlers: { threads: bridge.threads, running: bridge.running, stuck } } : {}),
      });
    });
    health.get('/metrics', async (_req, reply) => {
      if (!worker) return reply.status(503).send(`# the worker is starting (waiting for ${starting.waitingFor})\n`);
      const metrics = (metricsRegistry ??= workerMetrics(worker, runner));
      reply.header('content-type', metrics.contentType);
      return metrics.metrics();
    });
    await health.listen({ port: opts.port!, host: '127.0.0.1' });
  }

  const {
    signal,
    quitting,
    stop: shutdown,
  } = stopOnSignal(log, async () => {
    await health?.close();
    await worker?.stop();
    await runner.close();
    await bus?.close();
    await store?.close();
  });
  store = await untilReachable('PostgreSQL', () => connectStore(config, log, { applicationName: `weft-worker-${opts.runtime}` }), {
    log,
    signal,
    onWaiting: (reason) => Object.assign(starting, { waitingFor: 'database', reason }),
  }).catch(quitting);
  if (!store) return;
  bus = createMessageBus(config, store.db, log);
  const candidate = new Worker({
    db: store.db,
    bus,
    log,
    runner,
    workerId: processId(`worker-${opts.runtime}`),
    namespaces: opts.namespaces
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    concurrency: opts.concurrency,
    leaseMs: config.leaseMs,
    info: opts.port !== undefined ? { port: opts.port } : {},
  });
  const started = await untilReachable(config.messaging === 'rabbitmq' ? 'RabbitMQ' : 'PostgreSQL', () => candidate.start().then(() => true), {
    log,
    signal,
    onWaiting: (reason) => Object.assign(starting, { waitingFor: config.messaging === 'rabbitmq' ? 'broker' : 'database', reason }),
  }).catch(quitting);
  if (!started) return;
  worker = candidate;

  // A runtime that cannot be trusted any more (a handler that would not stop)
  // ends the process, so its supervisor starts a fresh one; the stuck step
  // is retried elsewhere once its lease expires.
  worker.once('broken', (runtime: string, reason?: string) => {
    log.error({ runtime, reason }, 'runtime is broken (too many handlers ignored their timeout or cancel); exiting so a fresh worker can take over');
    void shutdown().finally(() => process.exit(70));
  });
}
