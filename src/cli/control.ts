import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { requestJson } from '../shared/http-json.js';
import { loadConfig, type WeftConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { isUuid, processId } from '../shared/ids.js';
import { ValidationError, WeftError } from '../shared/errors.js';
import { connectStore } from '../ops/connect-store.js';
import { createMessageBus } from '../messaging/index.js';
import { Orchestrator } from '../orchestration/orchestrator.js';

type Out = (s: string) => void;

/**
 * `weft cancel ID` and `weft retry ID [--step NAME]`. With
 * WEFT_ORCHESTRATOR_URL they ask that orchestrator (sending WEFT_API_TOKEN);
 * without, they act on the database directly, as an orchestrator would
 * (the audit rows name the operating-system user).
 */
export function registerControlCommands(program: Command, out: Out = (s) => process.stdout.write(`${s}\n`)): void {
  program
    .command('cancel')
    .description('cancel a pending or running task: its steps stop (running ones are interrupted) and end cancelled')
    .argument('<task-id>')
    .action(async (id: string) => {
      const r = await control(loadConfig(), id, 'cancel', undefined);
      out(`task ${id} cancelled${r.interrupted ? ` (${r.interrupted} running step${r.interrupted === 1 ? '' : 's'} interrupted)` : ''}`);
    });

  program
    .command('retry')
    .description('run a task that failed or was cancelled again from its failed and cancelled steps, with a fresh retry budget')
    .argument('<task-id>')
    .option('--step <name>', 'retry from this failed step (it must be the only failed one)')
    .action(async (id: string, opts: { step?: string }) => {
      const r = await control(loadConfig(), id, 'retry', opts.step);
      out(`task ${id} running again (${r.enqueued} step${r.enqueued === 1 ? '' : 's'} ready now)`);
    });
}

async function control(
  config: WeftConfig,
  id: string,
  op: 'cancel' | 'retry',
  step: string | undefined,
): Promise<{ interrupted?: number; enqueued?: number }> {
  if (!isUuid(id)) throw new ValidationError(`task id "${id}" is not a UUID; \`weft run\` prints it, and GET /v1/tasks lists them`, 'id');
  if (config.orchestratorUrl) {
    const url = `${config.orchestratorUrl.replace(/\/$/, '')}/v1/tasks/${encodeURIComponent(id)}/${op}`;
    const res = await requestJson('POST', url, { body: step ? { step } : {}, token: config.apiToken });
    const body = (typeof res.body === 'object' && res.body !== null ? res.body : {}) as { error?: { message?: string }; interrupted?: number; enqueued?: number };
    if (res.status >= 300) throw new WeftError('api', `${res.status} ${body.error?.message ?? JSON.stringify(res.body)}`);
    return body;
  }
  const log = createLogger({ level: process.env.WEFT_LOG_LEVEL ?? 'warn' });
  const store = await connectStore(config, log, { applicationName: `weft-${op}` });
  const bus = createMessageBus(config, store.db, log);
  try {
    const orchestrator = new Orchestrator({ db: store.db, bus, log, processId: processId(op) });
    const by = `cli:${userInfo().username}`;
    return op === 'cancel' ? await orchestrator.cancelTask(id, by) : await orchestrator.retryTask(id, { step, by });
  } finally {
    await bus.close();
    await store.close();
  }
}
