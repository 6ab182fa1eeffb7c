/**
 * Quick in-process latency probe (development aid): one orchestrator and
 * one native worker in this process, N sequential tasks, P50/P95 of
 * create → completion observed through the task-end notification.
 *
 *   WEFT_DATABASE_URL=... WEFT_MESSAGING=pg npx tsx bench/quick-latency.ts [template] [n]
 */
import { loadConfig } from '../src/shared/config.js';
import { createLogger } from '../src/shared/logger.js';
import { processId } from '../src/shared/ids.js';
import { connectStore } from '../src/ops/connect-store.js';
import { createMessageBus } from '../src/messaging/index.js';
import { Orchestrator } from '../src/orchestration/orchestrator.js';
import { Worker } from '../src/worker/worker.js';
import { NativeRunner } from '../src/worker/native-runner.js';
import { loadHandlerDir } from '../src/worker/handler-registry.js';
import { loadTemplateDir } from '../src/core/template/load.js';

const [target = 'e2e_linear/mathematical_sequence', nArg = '50'] = process.argv.slice(2);
const [namespace, name] = target.split('/') as [string, string];
const config = loadConfig();
const log = createLogger({ level: 'warn' });
const store = await connectStore(config, log);
const bus = createMessageBus(config, store.db, log);
const orch = new Orchestrator({ db: store.db, bus, log, processId: processId('bench') });
await orch.registerTemplates(await loadTemplateDir('templates'));
await orch.start();
const worker = new Worker({
  db: store.db,
  bus,
  log,
  runner: new NativeRunner(await loadHandlerDir('handlers/typescript')),
  workerId: processId('w'),
  namespaces: [namespace],
});
await worker.start();
const ctx = namespace.startsWith('e2e_conditional') ? { amount: 500, requester: 'b', purpose: 'b' } : { even_number: 6 };
const times: number[] = [];
const n = Number(nArg);
for (let i = 0; i < n + 10; i++) {
  const t0 = performance.now();
  const { id } = await orch.createTask({ namespace, name, context: ctx });
  await orch.waitForTask(id, 10_000);
  if (i >= 10) times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const pct = (p: number) => times[Math.min(times.length - 1, Math.floor(p * (times.length - 1)))]!.toFixed(2);
console.log(`${target} ${config.messaging}: n=${n} p50=${pct(0.5)} ms p95=${pct(0.95)} min=${times[0]!.toFixed(2)} max=${times.at(-1)!.toFixed(2)}`);
await worker.stop();
await orch.stop();
await bus.close();
await store.close();
