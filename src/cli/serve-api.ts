import type { FastifyInstance } from 'fastify';
import type { Orchestrator } from '../orchestration/orchestrator.js';
import type { Database } from '../store/database.js';
import type { MessageBus } from '../messaging/types.js';
import type { Logger } from '../shared/logger.js';
import { buildApi } from '../api/server.js';
import { assertSafeBinding } from '../api/auth.js';
import { liveTokenCount } from '../store/tokens.js';

export interface ServeApiOptions {
  orchestrator: Orchestrator;
  db: Database;
  bus: MessageBus;
  log: Logger;
  host: string;
  port: number;
  insecure?: boolean;
  createPerMinute?: number;
}

/**
 * The HTTP API and the dashboard of one orchestrator, listening: refuses an
 * open API on a non-loopback address, hands the dashboard's streams
 * the orchestrator's live events. `close()` stops both.
 */
export async function serveApi(o: ServeApiOptions): Promise<{ url: string; app: FastifyInstance; close(): Promise<void> }> {
  assertSafeBinding(o.host, await liveTokenCount(o.db), o.insecure === true);
  // The orchestrator's task events: every task end, and live step changes of watched tasks.
  const liveEvents = o.orchestrator.taskEvents;
  const app = buildApi({ orchestrator: o.orchestrator, db: o.db, bus: o.bus, log: o.log, liveEvents, auth: { insecure: o.insecure }, createPerMinute: o.createPerMinute });
  try {
    await app.listen({ port: o.port, host: o.host });
  } catch (err) {
    await app.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host === '0.0.0.0' ? '127.0.0.1' : o.host;
  return {
    url: `http://${host}:${port}`,
    app,
    async close() {
      await app.close();
    },
  };
}
