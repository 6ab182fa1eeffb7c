/**
 * Cancel or retry a task, for `weft cancel` and `weft retry`: through the
 * orchestrator at WEFT_ORCHESTRATOR_URL when one is set (sending
 * WEFT_API_TOKEN), otherwise on the database directly, as an orchestrator
 * would (the audit rows name the operating-system user).
 */
import { orchestratorOptions } from './process-options.js';
import { userInfo } from 'node:os';
import { requestJson } from '../shared/http-json.js';
import type { WeftConfig } from '../shared/config.js';
import { configuredLogger } from '../shared/logger.js';
import { isUuid, processId } from '../shared/ids.js';
import { ValidationError, WeftError } from '../shared/errors.js';
import { createMessageBus } from '../messaging/index.js';
import { Orchestrator } from '../orchestration/orchestrator.js';
import { connectStore } from './connect-store.js';

export async function controlTask(
  config: WeftConfig,
  id: string,
  op: 'cancel' | 'retry',
  opts: { step?: string; reason?: string } = {},
): Promise<{ interrupted?: number; enqueued?: number }> {
  if (!isUuid(id)) throw new ValidationError(`task id "${id}" is not a UUID; \`weft run\` prints it, and GET /v1/tasks lists them`, 'id');
  const { step, reason } = opts;
  if (config.orchestratorUrl) {
    const url = `${config.orchestratorUrl.replace(/\/$/, '')}/v1/tasks/${encodeURIComponent(id)}/${op}`;
    const request = op === 'cancel' ? (reason ? { reason } : {}) : step ? { step } : {};
    const res = await requestJson('POST', url, { body: request, token: config.apiToken });
    const body = (typeof res.body === 'object' && res.body !== null ? res.body : {}) as {
      error?: { message?: string };
      interrupted?: number;
      enqueued?: number;
    };
    if (res.status >= 300) throw new WeftError('api', `${res.status} ${body.error?.message ?? JSON.stringify(res.body)}`);
    return body;
  }
  const log = configuredLogger(config, { quiet: true });
  const store = await connectStore(config, log, { applicationName: `weft-${op}` });
  const bus = createMessageBus(config, store.db, log);
  try {
    const orchestrator = new Orchestrator(orchestratorOptions(config, { db: store.db, bus, log, processId: processId(op) }));
    const by = `cli:${userInfo().username}`;
    return op === 'cancel' ? await orchestrator.cancelTask(id, by, reason) : await orchestrator.retryTask(id, { step, by });
  } finally {
    await bus.close();
    await store.close();
  }
}
