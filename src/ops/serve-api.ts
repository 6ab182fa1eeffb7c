import http from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Orchestrator } from '../orchestration/orchestrator.js';
import type { Database } from '../store/database.js';
import type { MessageBus } from '../messaging/types.js';
import type { Logger } from '../shared/logger.js';
import { buildApi, RETRY_AFTER_S } from '../api/server.js';
import { assertSafeBinding, isLoopback } from '../api/auth.js';
import { answerClientError, errorBody, setSecurityHeaders } from '../api/protections.js';
import { applyServerLimits, CONNECTIONS_CHECKING_INTERVAL_MS } from '../api/limits.js';
import { DEFAULT_API_SETTINGS, type ApiSettings, type WeftConfig } from '../shared/config.js';
import { liveTokenCount } from '../store/tokens.js';

export interface ServeApiOptions {
  orchestrator: Orchestrator;
  db: Database;
  bus: MessageBus;
  log: Logger;
  host: string;
  port: number;
  insecure?: boolean;
  /** Rate and API limits from the environment (loadConfig()); the defaults when omitted. */
  settings?: Pick<WeftConfig, 'taskRateLimitPerMinute' | 'api'>;
}

export interface ServedApi {
  url: string;
  app: FastifyInstance;
  /** End long-polls and event streams (telling clients to retry), then stop listening. */
  close(): Promise<void>;
}

/**
 * A bound API port before the API exists: an orchestrator binds it first (a
 * port clash stops it before anything else) and answers every request with
 * 503 "starting", naming what it waits for, until {@link serveApi} hands the
 * port to the API.
 */
export interface BoundPort {
  url: string;
  server: http.Server;
  /** What /health says the process waits for, and why. */
  waiting(waitingFor: string, reason: string): void;
  /** Stop listening (for a process that quits before serving). */
  close(): Promise<void>;
  /** @internal route requests to the API. */
  attach(handler: http.RequestListener): void;
}

/** How long a closing API lets responses in flight finish before cutting their connections (ms). */
const CLOSE_GRACE_MS = 1_500;

/**
 * Whether listening on `host` needs a token to exist first: a non-loopback
 * address without `--insecure`. The caller then checks before it binds the
 * port or starts anything (see {@link assertSafeBinding}).
 */
export function bindingNeedsToken(host: string, insecure: boolean | undefined): boolean {
  return insecure !== true && !isLoopback(host);
}

/** Throw the ConfigError of {@link assertSafeBinding} when `host` needs a token and none exists in `db`. */
export async function refuseOpenBinding(o: { host: string; insecure?: boolean }, db: Database): Promise<void> {
  if (bindingNeedsToken(o.host, o.insecure)) assertSafeBinding(o.host, await liveTokenCount(db), false);
}

export async function bindApiPort(host: string, port: number, limits: Partial<ApiSettings> = {}): Promise<BoundPort> {
  const state = { waitingFor: 'database', reason: 'connecting' };
  let handler: http.RequestListener | undefined;
  const starting: http.RequestListener = (req, res) => {
    const health = (req.url ?? '').split('?')[0] === '/health';
    const body = health
      ? { status: 'starting', waiting_for: state.waitingFor, reason: state.reason }
      : errorBody('starting', `the orchestrator is starting: waiting for the ${state.waitingFor} (${state.reason}); retry in ${RETRY_AFTER_S} s`, {
          retry_after_s: RETRY_AFTER_S,
        });
    res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': String(RETRY_AFTER_S) });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, (req, res) => {
    setSecurityHeaders(res);
    (handler ?? starting)(req, res);
  });
  applyServerLimits(server, { ...DEFAULT_API_SETTINGS, ...limits });
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shown}:${bound}`,
    server,
    waiting(waitingFor, reason) {
      Object.assign(state, { waitingFor, reason });
    },
    attach(h) {
      handler = h;
    },
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
      await closed;
      clearTimeout(cut);
    },
  };
}

/**
 * The HTTP API and the dashboard of one orchestrator, listening: refuses an
 * open API on a non-loopback address (callers that start more than the API
 * check {@link bindingNeedsToken} before anything else), hands the dashboard's
 * streams the orchestrator's live events. Serves on `bound` when given (see
 * {@link bindApiPort}), else binds `host:port` itself. `close()` stops both.
 */
export async function serveApi(o: ServeApiOptions, bound?: BoundPort): Promise<ServedApi> {
  await refuseOpenBinding(o, o.db);
  const port = bound ?? (await bindApiPort(o.host, o.port, o.settings?.api));
  // The orchestrator's task events: every task end, and live step changes of watched tasks.
  const liveEvents = o.orchestrator.taskEvents;
  const app = buildApi(
    {
      orchestrator: o.orchestrator,
      db: o.db,
      bus: o.bus,
      log: o.log,
      liveEvents,
      auth: { insecure: o.insecure },
      createPerMinute: o.settings?.taskRateLimitPerMinute,
      limits: o.settings?.api,
    },
    (handler) => {
      port.attach(handler);
      return port.server;
    },
  );
  try {
    await app.ready();
  } catch (err) {
    await port.close();
    throw err;
  }
  return {
    url: port.url,
    app,
    async close() {
      // The API's close hooks end long-polls and streams first; then the port, waiting for those answers.
      await app.close();
      await port.close();
    },
  };
}
