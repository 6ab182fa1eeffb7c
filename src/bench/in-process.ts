/**
 * The `weft run` path, measured: an orchestrator and a native worker in the
 * bench's own process (no HTTP), on the benchmark's database and message
 * backend. A sample is createTask → the task's end observed by waitForTask.
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../shared/logger.js';
import { WeftError } from '../shared/errors.js';
import { openDatabase } from '../store/database.js';
import { migrate } from '../store/migrate.js';
import { getTaskView } from '../store/tasks.js';
import { PgMessageBus } from '../messaging/pg.js';
import { RabbitMessageBus } from '../messaging/rabbitmq.js';
import type { MessageBus } from '../messaging/types.js';
import { Orchestrator } from '../orchestration/orchestrator.js';
import { Worker } from '../worker/worker.js';
import { NativeRunner } from '../worker/native-runner.js';
import { loadHandlerDir } from '../worker/handler-registry.js';
import { loadTemplateDir } from '../core/template/load.js';
import { packageRoot } from '../shared/paths.js';
import type { Backend } from './types.js';
import { contextFor, verifyOutcome, type ScenarioDef } from './scenarios.js';

export interface InProcessSample {
  /** createTask called → end observed. */
  ms: number;
  /** The server's created_at → completed_at. */
  server_ms: number;
  /** The task, and when (Unix ms, sub-ms precision) createTask was called, returned, and the end was observed (the profile's client side). */
  id: string;
  at: ClientTimes;
}

/** A task's client-side instants, Unix ms with sub-millisecond precision (comparable with the server's timestamps on the same machine). */
export interface ClientTimes {
  sent: number;
  created: number;
  ended: number;
}

/** Now as Unix ms with sub-millisecond precision. */
export const epochMs = (): number => performance.timeOrigin + performance.now();

/** Thrown when an in-process task ended wrong: the bench stops, as for the cluster's. */
export class InProcessFailure extends WeftError {
  override name = 'InProcessFailure';
  constructor(message: string) {
    super('bench_failed', message);
  }
}

/**
 * Run `warmup + samples` tasks of each scenario (interleaved) in one process
 * and return the measured samples per scenario id. Every task's results are
 * checked.
 */
export async function measureInProcess(o: {
  databaseUrl: string;
  backend: Backend;
  amqpUrl: string;
  scenarios: ScenarioDef[];
  samples: number;
  warmup: number;
  log: Logger;
}): Promise<Map<string, InProcessSample[]>> {
  const db = await openDatabase({ url: o.databaseUrl, log: o.log, max: 10, applicationName: 'weft-bench-in-process' });
  await migrate(db, o.log);
  const prefix = `weft_bench_${randomBytes(4).toString('hex')}`;
  const bus: MessageBus = o.backend === 'pg' ? new PgMessageBus(db, o.log) : new RabbitMessageBus({ url: o.amqpUrl, prefix }, db, o.log);
  const orchestrator = new Orchestrator({ db, bus, log: o.log, processId: `bench-in-process-${process.pid}` });
  const runner = new NativeRunner(await loadHandlerDir(join(packageRoot(), 'handlers', 'typescript')));
  const worker = new Worker({
    db,
    bus,
    log: o.log,
    runner,
    workerId: `bench-in-process-worker-${process.pid}`,
    namespaces: [...new Set(o.scenarios.map((s) => s.namespace))],
  });
  const out = new Map<string, InProcessSample[]>(o.scenarios.map((s) => [s.id, []]));
  try {
    await orchestrator.registerTemplates(await loadTemplateDir(join(packageRoot(), 'templates')));
    await orchestrator.start();
    await worker.start();
    for (let i = 0; i < o.warmup + o.samples; i++) {
      for (const s of o.scenarios) {
        const sent = epochMs();
        const { id } = await orchestrator.createTask({ namespace: s.namespace, name: s.name, context: contextFor(s) });
        const created = epochMs();
        const ended = await orchestrator.waitForTask(id, s.timeoutMs);
        const view = await getTaskView(db, id);
        const seen = epochMs();
        const ms = seen - sent;
        if (!ended || !view) throw new InProcessFailure(`${s.id} in one process: task ${id} did not end within ${s.timeoutMs} ms`);
        const problem = verifyOutcome(s, view);
        if (problem) throw new InProcessFailure(`${s.id} in one process: task ${id} has a wrong result: ${problem}`);
        if (i >= o.warmup) out.get(s.id)!.push({ ms, server_ms: view.duration_ms ?? NaN, id, at: { sent, created, ended: seen } });
      }
    }
    return out;
  } finally {
    await worker.stop(5_000);
    await orchestrator.stop();
    if (bus instanceof RabbitMessageBus) await bus.deleteDeclaredQueues().catch(() => undefined);
    await bus.close();
    await db.close();
  }
}
