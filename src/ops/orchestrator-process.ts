import type { WeftConfig } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { processId } from '../shared/ids.js';
import { untilReachable } from '../shared/retry.js';
import { connectStore, type Store } from './connect-store.js';
import { createMessageBus } from '../messaging/index.js';
import type { MessageBus } from '../messaging/types.js';
import { Orchestrator } from '../orchestration/orchestrator.js';
import { loadTemplateDir } from '../core/template/load.js';
import { bindApiPort, bindingNeedsToken, refuseOpenBinding, serveApi, type BoundPort, type ServedApi } from './serve-api.js';
import { stopOnSignal } from './lifecycle.js';
import { orchestratorOptions } from './process-options.js';

/**
 * `weft orchestrator`: HTTP API + sweeps until SIGTERM.
 *
 * The API port is bound first, so a port clash stops the process before
 * anything else; except on a non-loopback --host without --insecure, where
 * it first connects to PostgreSQL to learn whether a token exists, and
 * refuses (before binding, registering templates or sweeping) when none
 * does. Started while PostgreSQL is down, it waits for it with
 * backoff (saying why in its log, and in /health, which answers 503
 * "starting" meanwhile; every other route answers 503 too) instead of
 * exiting. It does not wait for the broker: tasks are accepted while it is
 * down (their messages wait in weft.outbox) and /health says `degraded`,
 * naming it. On SIGTERM long-polls and event streams end at once, telling
 * their clients to retry.
 */
export async function runOrchestrator(
  config: WeftConfig,
  log: Logger,
  opts: { port: number; host: string; templates?: string; insecure?: boolean },
): Promise<void> {
  const templates = opts.templates ? await loadTemplateDir(opts.templates) : [];
  const tokenFirst = bindingNeedsToken(opts.host, opts.insecure);
  let port: BoundPort | undefined;
  let store: Store | undefined;
  let bus: MessageBus | undefined;
  let orchestrator: Orchestrator | undefined;
  let api: ServedApi | undefined;

  const { signal, quitting } = stopOnSignal(log, async () => {
    await (api ?? port)?.close();
    await orchestrator?.stop();
    await bus?.close();
    await store?.close();
  });
  const connect = () =>
    untilReachable('PostgreSQL', () => connectStore(config, log, { applicationName: 'weft-orchestrator' }), {
      log,
      signal,
      onWaiting: (reason) => port?.waiting('database', reason),
    }).catch(quitting);

  try {
    if (tokenFirst) {
      store = await connect();
      if (!store) return;
      await refuseOpenBinding(opts, store.db);
    }
    const bound = (port = await bindApiPort(opts.host, opts.port, config.api));
    store ??= await connect();
    if (!store) return;
    const db = store.db;
    bus = createMessageBus(config, db, log);
    const create = () => new Orchestrator(orchestratorOptions(config, { db, bus: bus!, log, processId: processId('orchestrator') }));
    // PostgreSQL may go away again between the connect and here: keep waiting, do not exit.
    // Each attempt starts a fresh orchestrator, so a half-started one leaves nothing behind.
    orchestrator = await untilReachable(
      'PostgreSQL',
      async () => {
        const candidate = create();
        try {
          await candidate.registerTemplates(templates);
          await candidate.start();
          return candidate;
        } catch (err) {
          await candidate.stop().catch(() => undefined);
          throw err;
        }
      },
      { log, signal, onWaiting: (reason) => bound.waiting('database', reason) },
    ).catch(quitting);
    if (!orchestrator) return;
    api = await serveApi({ orchestrator, db, bus, log, host: opts.host, port: opts.port, insecure: opts.insecure, settings: config }, bound);
    const broker = await bus.health();
    if (!broker.ok)
      log.warn({ reason: broker.detail }, 'the broker is unreachable; tasks are accepted and their messages wait in weft.outbox until it is back');
    log.info({ url: api.url, dashboard: `${api.url}/`, messaging: bus.backend, database: store.source }, 'orchestrator listening');
  } catch (err) {
    if (!api) {
      await port?.close();
      await orchestrator?.stop().catch(() => undefined);
      await bus?.close().catch(() => undefined);
      await store?.close();
    }
    throw err;
  }
}
