/**
 * Schedules from the command line (`weft schedules ...`): through the
 * orchestrator at WEFT_ORCHESTRATOR_URL when one is set (sending
 * WEFT_API_TOKEN), otherwise on the database directly, as an orchestrator
 * would (the audit rows name the operating-system user).
 */
import { userInfo } from 'node:os';
import { requestJson } from '../shared/http-json.js';
import type { WeftConfig } from '../shared/config.js';
import { configuredLogger } from '../shared/logger.js';
import { processId } from '../shared/ids.js';
import { WeftError } from '../shared/errors.js';
import { createMessageBus } from '../messaging/index.js';
import { Orchestrator } from '../orchestration/orchestrator.js';
import type { ScheduleBook } from '../orchestration/schedules.js';
import type { ScheduleInput } from '../core/schedule.js';
import { connectStore } from './connect-store.js';
import { orchestratorOptions } from './process-options.js';

export type ScheduleOp = { op: 'create'; input: ScheduleInput & { paused?: boolean } } | { op: 'list' } | { op: 'pause' | 'resume' | 'delete'; name: string };

/** The API's answer to the operation (the same JSON either way). */
export async function controlSchedules(config: WeftConfig, req: ScheduleOp): Promise<unknown> {
  if (config.orchestratorUrl) return throughApi(config.orchestratorUrl, config.apiToken, req);
  const log = configuredLogger(config, { quiet: true });
  const store = await connectStore(config, log, { applicationName: 'weft-schedules' });
  const bus = createMessageBus(config, store.db, log);
  try {
    const book = new Orchestrator(orchestratorOptions(config, { db: store.db, bus, log, processId: processId('schedules') })).schedules;
    return await onBook(book, req, `cli:${userInfo().username}`);
  } finally {
    await bus.close();
    await store.close();
  }
}

async function onBook(book: ScheduleBook, req: ScheduleOp, actor: string): Promise<unknown> {
  switch (req.op) {
    case 'create':
      return (await book.save(req.input, { actor, paused: req.input.paused })).schedule;
    case 'list':
      return { schedules: await book.list() };
    case 'pause':
      return book.pause(req.name, actor);
    case 'resume':
      return book.resume(req.name, actor);
    case 'delete':
      await book.delete(req.name, actor);
      return { name: req.name, deleted: true };
  }
}

async function throughApi(base: string, token: string | undefined, req: ScheduleOp): Promise<unknown> {
  const root = `${base.replace(/\/$/, '')}/v1/schedules`;
  const res =
    req.op === 'create'
      ? await requestJson('POST', root, { body: req.input, token })
      : req.op === 'list'
        ? await requestJson('GET', root, { token })
        : req.op === 'delete'
          ? await requestJson('DELETE', `${root}/${encodeURIComponent(req.name)}`, { token })
          : await requestJson('POST', `${root}/${encodeURIComponent(req.name)}/${req.op}`, { body: {}, token });
  const body = res.body as { error?: { message?: string } } | undefined;
  if (res.status >= 300) throw new WeftError('api', `${res.status} ${body?.error?.message ?? JSON.stringify(res.body)}`);
  return res.body;
}
