/**
 * Submit many tasks, for `weft tasks submit`: through the orchestrator at
 * WEFT_ORCHESTRATOR_URL when one is set (POST /v1/tasks/batch, sending
 * WEFT_API_TOKEN), otherwise on the database directly, as an orchestrator
 * would. Either way each batch is one statement and one commit, and each
 * item gets its own answer.
 */
import { requestJson } from '../shared/http-json.js';
import type { WeftConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { processId } from '../shared/ids.js';
import { WeftError } from '../shared/errors.js';
import { createMessageBus } from '../messaging/index.js';
import { Orchestrator, type BatchItemResult } from '../orchestration/orchestrator.js';
import { createTaskBatch } from '../api/routes/task-batch.js';
import { connectStore } from './connect-store.js';

/** Sends one batch (the results come back in the batch's order, `index` counting within it). */
type SendBatch = (tasks: unknown[]) => Promise<BatchItemResult[]>;

/**
 * Submit `tasks` in batches of `batchSize`; results in the order of `tasks`,
 * `index` counting over all of them. A batch the server refuses as a whole
 * (a 4xx/5xx, e.g. a batch over WEFT_TASK_BATCH_LIMIT) throws, naming it.
 */
export async function submitTasks(config: WeftConfig, tasks: unknown[], batchSize: number): Promise<BatchItemResult[]> {
  const results: BatchItemResult[] = [];
  const send = async (sendBatch: SendBatch) => {
    for (let from = 0; from < tasks.length; from += batchSize) {
      const part = await sendBatch(tasks.slice(from, from + batchSize));
      for (const r of part) results.push({ ...r, index: r.index + from });
    }
  };
  if (config.orchestratorUrl) {
    const url = `${config.orchestratorUrl.replace(/\/$/, '')}/v1/tasks/batch`;
    await send(async (batch) => {
      const res = await requestJson('POST', url, { body: { tasks: batch }, token: config.apiToken, timeoutMs: 120_000 });
      const body = res.body as { results?: BatchItemResult[]; error?: { message?: string } } | undefined;
      if (res.status !== 200 || !Array.isArray(body?.results)) {
        throw new WeftError('api', `POST ${url} answered ${res.status}: ${body?.error?.message ?? JSON.stringify(res.body)}`);
      }
      return body.results;
    });
    return results;
  }
  const log = createLogger({ level: process.env.WEFT_LOG_LEVEL ?? 'warn' });
  const store = await connectStore(config, log, { applicationName: 'weft-submit' });
  const bus = createMessageBus(config, store.db, log);
  try {
    const orchestrator = new Orchestrator({ db: store.db, bus, log, processId: processId('submit') });
    await send((batch) => createTaskBatch(orchestrator, batch, false));
  } finally {
    await bus.close();
    await store.close();
  }
  return results;
}
