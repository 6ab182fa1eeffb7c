import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { silentLogger, createLogger, type Logger } from '../../src/shared/logger.js';
import { processId } from '../../src/shared/ids.js';
import type { MessageBus } from '../../src/messaging/types.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { RabbitMessageBus } from '../../src/messaging/rabbitmq.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { Orchestrator } from '../../src/orchestration/orchestrator.js';
import { Worker } from '../../src/worker/worker.js';
import { NativeRunner } from '../../src/worker/native-runner.js';
import type { StepRunner } from '../../src/worker/runner.js';
import { HandlerRegistry, loadHandlerDir } from '../../src/worker/handler-registry.js';
import type { StepHandler } from '../../src/worker/sdk.js';
import { loadTemplateDir } from '../../src/core/template/load.js';
import type { TemplateDefinition } from '../../src/core/template/types.js';
import { getTaskView, type TaskView } from '../../src/store/tasks.js';
import { packageRoot } from '../../src/shared/paths.js';
import { AMQP_URL } from './urls.js';

export type Backend = 'pg' | 'rabbitmq';

export interface EngineOptions {
  backend: Backend;
  url: string;
  orchestrators?: number;
  workers?: number;
  /** Extra handlers (test doubles with real behaviour: failing, slow, ...). */
  handlers?: Record<string, StepHandler>;
  /** Extra templates, besides everything under templates/. */
  templates?: TemplateDefinition[];
  namespaces?: string[];
  pollIntervalMs?: number;
  /** How often a PostgreSQL-queue consumer claims without being woken (default: pollIntervalMs). */
  consumerPollMs?: number;
  leaseMs?: number;
  concurrency?: number;
  log?: Logger;
  /** One process, as `weft run` has it: orchestrators and workers share one pool and one bus (default: a pool and bus each). */
  oneProcess?: boolean;
}

export interface Engine {
  orchestrators: Orchestrator[];
  workers: Worker[];
  db: Database;
  queuePrefix: string;
  /** Native handlers of templates/ and the test's own, for runners a test builds itself. */
  registry: HandlerRegistry;
  /** Start one more worker (e.g. after killing another): native, or with the runner and options given. */
  addWorker(opts?: { runner?: StepRunner; workerId?: string; orphanCheckMs?: number }): Promise<Worker>;
  run(namespace: string, name: string, context: unknown, timeoutMs?: number): Promise<TaskView>;
  stop(): Promise<void>;
}

/**
 * Orchestrators and native workers in this process, each with its own pool
 * and bus (as separate processes would have), on a real PostgreSQL and a
 * real broker. RabbitMQ queues get a unique prefix and are deleted on stop.
 */
export async function startEngine(o: EngineOptions): Promise<Engine> {
  const log = o.log ?? (process.env.WEFT_TEST_LOG ? createLogger({ level: process.env.WEFT_TEST_LOG, pretty: false }) : silentLogger());
  const queuePrefix = `weft_test_${randomBytes(4).toString('hex')}`;
  const closers: Array<() => Promise<void>> = [];
  const buses: MessageBus[] = [];
  let shared: { db: Database; bus: MessageBus } | undefined;
  const connect = async () => {
    if (o.oneProcess && shared) return shared;
    const db = await openDatabase({ url: o.url, log, max: 10 });
    const bus: MessageBus =
      o.backend === 'pg'
        ? new PgMessageBus(db, log, { pollIntervalMs: o.consumerPollMs ?? o.pollIntervalMs ?? 200 })
        : new RabbitMessageBus({ url: AMQP_URL, prefix: queuePrefix }, db, log);
    buses.push(bus);
    closers.push(async () => {
      await bus.close();
      await db.close();
    });
    shared = { db, bus };
    return shared;
  };

  const templates = [...(await loadTemplateDir(join(packageRoot(), 'templates'))), ...(o.templates ?? [])];
  const registry = await loadHandlerDir(join(packageRoot(), 'handlers/typescript'), new HandlerRegistry());
  for (const [k, fn] of Object.entries(o.handlers ?? {})) registry.register(k, fn, 'test');

  const orchestrators: Orchestrator[] = [];
  for (let i = 0; i < (o.orchestrators ?? 1); i++) {
    const { db, bus } = await connect();
    const orch = new Orchestrator({
      db,
      bus,
      log,
      processId: processId(`orch${i}`),
      pollIntervalMs: o.pollIntervalMs ?? 200,
      leaseMs: o.leaseMs ?? 30_000,
      redispatchAfterMs: 5_000,
    });
    if (i === 0) await orch.registerTemplates(templates);
    await orch.start();
    orchestrators.push(orch);
  }
  const workers: Worker[] = [];
  const namespaces = o.namespaces ?? [...new Set(templates.filter((t) => t.steps.some((s) => s.runtime === 'native')).map((t) => t.namespace))];
  const addWorker = async (w_?: { runner?: StepRunner; workerId?: string; orphanCheckMs?: number }) => {
    const { db, bus } = await connect();
    const w = new Worker({
      db,
      bus,
      log,
      runner: w_?.runner ?? new NativeRunner(registry),
      workerId: w_?.workerId ?? processId(`worker${workers.length}`),
      namespaces,
      leaseMs: o.leaseMs ?? 30_000,
      concurrency: o.concurrency ?? 8,
      orphanCheckMs: w_?.orphanCheckMs,
    });
    await w.start();
    workers.push(w);
    return w;
  };
  for (let i = 0; i < (o.workers ?? 1); i++) await addWorker();
  const reader = await openDatabase({ url: o.url, log, max: 4 });
  let rr = 0;
  return {
    orchestrators,
    workers,
    db: reader,
    queuePrefix,
    registry,
    addWorker,
    async run(namespace, name, context, timeoutMs = 30_000) {
      const orch = orchestrators[rr++ % orchestrators.length]!;
      const { id } = await orch.createTask({ namespace, name, context });
      const ended = await orch.waitForTask(id, timeoutMs);
      const view = (await getTaskView(reader, id))!;
      if (!ended)
        throw new Error(`task ${id} (${namespace}/${name}) did not end in ${timeoutMs} ms; steps: ${view.steps.map((s) => `${s.name}=${s.state}`).join(', ')}`);
      return view;
    },
    async stop() {
      await Promise.all(workers.map((w) => w.stop(5_000)));
      await Promise.all(orchestrators.map((x) => x.stop()));
      for (const bus of buses) if (bus instanceof RabbitMessageBus) await bus.deleteDeclaredQueues().catch(() => undefined);
      for (const c of closers) await c();
      await reader.close();
    },
  };
}

/** Step results by name. */
export function results(view: TaskView): Record<string, unknown> {
  return Object.fromEntries(view.steps.map((s) => [s.name, s.result]));
}
