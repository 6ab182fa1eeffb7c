import { setMaxListeners } from 'node:events';
import http from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Orchestrator } from '../orchestration/orchestrator.js';
import type { Database } from '../store/database.js';
import type { MessageBus } from '../messaging/types.js';
import type { Logger } from '../shared/logger.js';
import { getEndedTaskView, getTaskViewJson } from '../store/tasks.js';
import { listTemplates } from '../store/templates.js';
import { parseTemplate, validateTemplateObject } from '../core/template/parse.js';
import { TemplateError } from '../core/template/errors.js';
import { ConflictError, DatabaseError, NotFoundError, ValidationError, WeftError, describeError } from '../shared/errors.js';
import { isUnreachable } from '../shared/retry.js';
import { MessagingError } from '../messaging/types.js';
import type { LiveEvents } from '../orchestration/live-events.js';
import rateLimit from '@fastify/rate-limit';
import { ApiAuth, type AuthOptions } from './auth.js';
import { fieldPath, taskId } from './params.js';
import { assertStorable, installJsonBodyParser, MAX_BODY_DEPTH } from './json-body.js';
import { MAX_JSON_DEPTH } from '../core/json-depth.js';
import { DEFAULT_API_SETTINGS, DEFAULT_TASK_RATE_LIMIT, type ApiSettings } from '../shared/config.js';
import { answerClientError, errorBody, installOpenModeGuard, setSecurityHeaders } from './protections.js';
import { applyServerLimits, BodyBudget, CONNECTIONS_CHECKING_INTERVAL_MS, installBodyLimits, tooLargeBody } from './limits.js';
import { perTokenRateLimit } from './rate-limits.js';
import { yamlTextDepth } from './yaml-depth.js';
import { scrubSecrets, secretsOf } from '../shared/redact.js';
import { taskRoutes } from './routes/tasks.js';
import { taskBatchRoutes } from './routes/task-batch.js';
import { systemRoutes } from './routes/system.js';
import { catalogRoutes } from './routes/catalog.js';
import { tokenRoutes } from './routes/tokens.js';
import { scheduleRoutes } from './routes/schedules.js';
import { uiRoutes } from './ui.js';

export interface ApiOptions {
  orchestrator: Orchestrator;
  db: Database;
  bus: MessageBus;
  log: Logger;
  /** Body limit and budget, timeouts, connection cap, allowed hosts, template rate (config.api); defaults: DEFAULT_API_SETTINGS. */
  limits?: Partial<ApiSettings>;
  /** How long a request waits for room in the body budget before its 503 (ms; default 10 s). */
  bodyWaitMs?: number;
  /** Task ends and step changes for the server-sent events; without it the streams only say hello. */
  liveEvents?: LiveEvents;
  /** Bearer tokens (see auth.ts); always on: with no token stored the API answers loopback callers only. */
  auth?: AuthOptions;
  /** Tasks one token may create, and retries it may start, per minute (default DEFAULT_TASK_RATE_LIMIT). */
  createPerMinute?: number;
  /** Serve the dashboard at `/` (default true). */
  ui?: boolean;
}

/**
 * The orchestrator's HTTP API:
 *
 *   POST /v1/tasks                 create → 201 {id}; 400 bad input (names the field), 404 unknown template, 409 repeated idempotency key
 *   POST /v1/tasks/batch           create up to WEFT_TASK_BATCH_LIMIT tasks in one commit, with per-item results: routes/task-batch.ts
 *   GET  /v1/tasks, cancel, retry, server-sent events: routes/tasks.ts; workers, stats: routes/system.ts;
 *        template versions, bench results: routes/catalog.ts; schedules: routes/schedules.ts; the dashboard at /: ui.ts; tokens: auth.ts, routes/tokens.ts
 *   GET  /v1/tasks/:id             task state and every step (state, attempts, result, error, timings)
 *   GET  /v1/tasks/:id/wait        long-poll: returns the moment the task ends (or after timeout_ms, with ended: false)
 *   GET  /v1/templates             registered templates
 *   POST /v1/templates             register a template (YAML or JSON body)
 *   GET  /health                   database and broker: 200 healthy, or 503 degraded with the reasons
 *   GET  /metrics                  Prometheus text
 *
 * Errors are `{ "error": { "code", "message", "path"? } }`. docs/api.md documents every endpoint.
 * While PostgreSQL or the broker is unreachable every route answers 503 with
 * `Retry-After`, naming the dependency; on close (SIGTERM) long-polls and
 * event streams end at once, telling the client to retry.
 */
export function buildApi(options: ApiOptions, serverFactory?: (handler: http.RequestListener) => http.Server): FastifyInstance {
  const { orchestrator, db, bus } = options;
  const limits: ApiSettings = { ...DEFAULT_API_SETTINGS, ...options.limits };
  const app = Fastify({
    // An orchestrator binds its port before its dependencies are up (src/ops/serve-api.ts) and hands it over here.
    serverFactory: (handler: http.RequestListener) =>
      serverFactory ? serverFactory(handler) : http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, handler),
    logger: false,
    bodyLimit: limits.bodyLimitBytes,
    ajv: { customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false } },
    // Requests arriving while the server closes get weft's own 503 (the onRequest hook below).
    return503OnClosing: false,
    clientErrorHandler: answerClientError,
  });
  applyServerLimits(app.server, limits);
  // First of all: every answer carries the security headers, errors and event streams included.
  app.addHook('onRequest', async (_req, reply) => setSecurityHeaders(reply.raw));
  installJsonBodyParser(app);
  // Aborted when the server closes (SIGTERM): long-polls answer at once instead of holding the shutdown.
  const closing = new AbortController();
  // Every long-poll and event stream listens on it: thousands at once are expected, not a leak.
  setMaxListeners(0, closing.signal);
  app.addHook('preClose', async () => closing.abort());
  app.addHook('onRequest', async (_req, reply) => {
    if (!closing.signal.aborted) return;
    return reply
      .status(503)
      .header('retry-after', '1')
      .header('connection', 'close')
      .send({
        error: {
          code: 'shutting_down',
          message: 'this orchestrator is shutting down; retry (another orchestrator, or this one once restarted, answers)',
          retry_after_s: 1,
        },
      });
  });
  let lastOutageLog = 0;
  // /health is open to anyone: whatever a driver's message quotes of the connection URL stays hidden (here and in 503s).
  const dbSecrets = secretsOf(db.url);
  // JSON and YAML only: a type an HTML form can send (text/plain, form encodings) is answered 415,
  // so a page elsewhere cannot post a body here.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string' }, (_req, body, done) =>
    done(null, { __yaml: body as string }),
  );
  const auth = new ApiAuth(db, options.log, options.auth);
  installOpenModeGuard(app, { tokensRequired: () => auth.tokensRequiredOrLastKnown(), allowedHosts: limits.allowedHosts });
  auth.install(app);
  installBodyLimits(app, limits, new BodyBudget(limits.bodyBudgetBytes, options.bodyWaitMs));
  void app.register(rateLimit, { global: false });

  app.setNotFoundHandler((req, reply) =>
    reply
      .status(404)
      .send(errorBody('not_found', `no route ${req.method} ${req.url.split('?')[0]}; docs/api.md lists the API's routes (they start with /v1/)`)),
  );

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err.validation) {
      const v = err.validation[0]!;
      const path = fieldPath(v.instancePath, v.params as Record<string, unknown>);
      const problems = err.validation.map((e) => `${fieldPath(e.instancePath, e.params as Record<string, unknown>) || 'body'} ${e.message}`);
      return reply.status(400).send({ error: { code: 'invalid_input', message: problems.join('; '), path } });
    }
    if (err instanceof ValidationError) {
      return reply.status(400).send({ error: { code: err.code, message: err.message, path: err.path, details: err.details } });
    }
    if (err instanceof TemplateError) {
      return reply.status(400).send({ error: { code: err.code, message: err.message, problems: err.problems } });
    }
    const down = unavailableDependency(err);
    if (down) {
      // One line per 10 s: during an outage every request fails the same way.
      if (Date.now() - lastOutageLog > 10_000) {
        lastOutageLog = Date.now();
        options.log.warn({ dependency: down.dependency, reason: scrubSecrets(down.reason, dbSecrets) }, `${down.dependency} is unavailable; answering 503`);
      }
      return reply
        .status(503)
        .header('retry-after', String(RETRY_AFTER_S))
        .send(errorBody(down.code, down.message, { dependency: down.dependency, reason: scrubSecrets(down.reason, dbSecrets), retry_after_s: RETRY_AFTER_S }));
    }
    if (err instanceof NotFoundError) return reply.status(404).send({ error: { code: err.code, message: err.message } });
    if (err instanceof ConflictError) return reply.status(409).send({ error: { code: err.code, message: err.message, ...err.details } });
    if (err instanceof WeftError && err.code === 'not_implemented') return reply.status(501).send({ error: { code: err.code, message: err.message } });
    if (err.statusCode === 429) return reply.status(429).send({ error: { code: 'rate_limited', message: err.message } });
    if (err.statusCode === 413) return reply.status(413).header('connection', 'close').send(tooLargeBody(limits.bodyLimitBytes));
    if (err.statusCode === 415) {
      return reply
        .status(415)
        .send(
          errorBody(
            'unsupported_media_type',
            `content-type ${JSON.stringify(_req.headers['content-type'] ?? '')} is not accepted: send JSON (content-type: application/json), or a template as YAML (content-type: application/yaml)`,
          ),
        );
    }
    // A value PostgreSQL refused that the checks above let through (class 22: data exception):
    // the request's fault, not the server's.
    const pgCode = (err as { code?: unknown }).code;
    if (typeof pgCode === 'string' && /^22[0-9A-Z]{3}$/.test(pgCode)) {
      return reply.status(400).send({
        error: { code: 'invalid_input', message: `PostgreSQL refused a value of this request (SQLSTATE ${pgCode}: ${err.message}); check the values sent` },
      });
    }
    if (err.statusCode && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ error: { code: 'bad_request', message: err.message } });
    }
    options.log.error({ err: err.message, stack: err.stack }, 'request failed');
    const code = err instanceof WeftError ? err.code : 'internal';
    return reply.status(500).send({ error: { code, message: err.message } });
  });

  void app.register(taskRoutes, {
    orchestrator,
    db,
    liveEvents: options.liveEvents ?? orchestrator.taskEvents,
    createPerMinute: options.createPerMinute ?? DEFAULT_TASK_RATE_LIMIT,
    auth,
  });
  void app.register(taskBatchRoutes, {
    orchestrator,
    batchLimit: limits.taskBatchLimit,
    createPerMinute: options.createPerMinute ?? DEFAULT_TASK_RATE_LIMIT,
  });
  void app.register(systemRoutes, { db, bus });
  void app.register(catalogRoutes, { db });
  void app.register(tokenRoutes, { db, log: options.log });
  void app.register(scheduleRoutes, { orchestrator });
  if (options.ui !== false) void app.register(uiRoutes);

  app.get('/v1/tasks/:id', async (req, reply) => {
    const id = taskId(req.params);
    const view = await getTaskViewJson(db, id);
    if (!view) throw new NotFoundError(`no task ${id}`);
    return reply.type('application/json; charset=utf-8').send(view);
  });

  app.get('/v1/tasks/:id/wait', async (req, reply) => {
    const id = taskId(req.params);
    const raw = (req.query as { timeout_ms?: string }).timeout_ms;
    const timeoutMs = raw === undefined ? 30_000 : Number(raw);
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0 || timeoutMs > 600_000) {
      throw new ValidationError(`timeout_ms must be a number of milliseconds between 0 and 600000, got ${JSON.stringify(raw)}`, 'timeout_ms');
    }
    // A client that goes away stops its wait (and frees the connection) at once.
    // The response's 'close' fires on a disconnect (the request's may fire once its body is read).
    const gone = new AbortController();
    reply.raw.once('close', () => gone.abort());
    const stop = () => gone.abort();
    closing.signal.addEventListener('abort', stop, { once: true });
    let revoked: string | undefined;
    const letGo = auth.holdOpen(req, (message) => {
      revoked = message;
      gone.abort();
    });
    // The first look (a task this orchestrator does not know to be running may have ended already)
    // reads the view with the state: a task found ended is answered from that one read.
    let endedView: string | undefined;
    const firstLook = async () => {
      const now = await getEndedTaskView(db, id);
      if (!now) throw new NotFoundError(`no task ${id}`);
      endedView = now.view;
      return endedView !== undefined;
    };
    try {
      await orchestrator.waitForTask(id, timeoutMs, gone.signal, firstLook);
    } finally {
      closing.signal.removeEventListener('abort', stop);
      letGo();
    }
    if (revoked !== undefined) return reply.status(401).send(errorBody('token_invalid', revoked));
    if (closing.signal.aborted) {
      return reply
        .status(503)
        .header('retry-after', '1')
        .send({
          error: {
            code: 'shutting_down',
            message: 'this orchestrator is shutting down; repeat the wait (another orchestrator, or this one once restarted, answers it)',
            retry_after_s: 1,
          },
        });
    }
    // The view says whether the task has ended (`ended`), read after the wait.
    const view = endedView ?? (await getTaskViewJson(db, id));
    if (!view) throw new NotFoundError(`no task ${id}`);
    return reply.type('application/json; charset=utf-8').send(view);
  });

  app.get('/v1/templates', async () => ({ templates: await listTemplates(db) }));

  // In a plugin, so that it loads after @fastify/rate-limit and gets its limit.
  void app.register(async (scope) => {
    scope.post(
      '/v1/templates',
      { config: { rateLimit: perTokenRateLimit('register', 'templates', limits.templateRateLimitPerMinute, 'WEFT_TEMPLATE_RATE_LIMIT') } },
      async (req, reply) => {
        const body = req.body as { __yaml?: string } | Record<string, unknown>;
        const yaml = body && typeof body === 'object' && '__yaml' in body && typeof body.__yaml === 'string' ? body.__yaml : undefined;
        if (yaml === undefined) assertStorable(body, '');
        const def = yaml !== undefined ? parseYamlTemplate(yaml) : validateTemplateObject(body, 'request body');
        // A YAML body's depth is known only once parsed; its strings may carry NUL too.
        assertStorable(def, '');
        const outcome = await orchestrator.templates.register(def);
        await orchestrator.saveDeclaredSchedules(def);
        if (outcome === 'created') {
          options.log.info({ template: `${def.namespace}/${def.name}@${def.version}`, token: req.apiToken?.name ?? null }, 'template version registered');
        }
        return reply.status(outcome === 'created' ? 201 : 200).send({ namespace: def.namespace, name: def.name, version: def.version, outcome });
      },
    );
  });

  app.get('/health', async (_req, reply) => {
    const [dbOk, broker] = await Promise.all([
      within(
        db.query('SELECT 1').then(() => ({ ok: true, detail: 'ok' })),
        HEALTH_CHECK_MS,
        `PostgreSQL did not answer within ${HEALTH_CHECK_MS} ms`,
      ).catch((err: Error) => ({ ok: false, detail: `PostgreSQL is unreachable: ${scrubSecrets(describeError(err).message, dbSecrets)}` })),
      within(bus.health(), HEALTH_CHECK_MS, `the ${bus.backend} message bus did not answer within ${HEALTH_CHECK_MS} ms`).catch((err: Error) => ({
        ok: false,
        backend: bus.backend,
        detail: err.message,
      })),
    ]);
    const reasons: string[] = [];
    if (!dbOk.ok) reasons.push(`database: ${dbOk.detail}`);
    if (!broker.ok) reasons.push(`${bus.backend === 'rabbitmq' ? 'broker' : 'messaging'}: ${broker.detail}`);
    const ok = reasons.length === 0;
    if (!ok) reply.header('retry-after', String(RETRY_AFTER_S));
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'healthy' : 'degraded', reasons, database: dbOk, messaging: broker, pool: db.poolStats() });
  });

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', orchestrator.metrics.registry.contentType);
    return orchestrator.metrics.registry.metrics();
  });

  return app;
}

/** What a 503 asks the client to wait before retrying (s). */
export const RETRY_AFTER_S = 5;
/** /health answers within this even when a dependency hangs (ms). */
const HEALTH_CHECK_MS = 3_000;

/**
 * The dependency an error says is down, if it does: the broker (a
 * MessagingError anywhere in its causes) or PostgreSQL (refused, reset,
 * timed out, shutting down: see isUnreachable). Undefined for any other error.
 */
export function unavailableDependency(err: unknown): { code: string; dependency: 'database' | 'broker'; message: string; reason: string } | undefined {
  const reason = describeError(err).message;
  for (let e = err as { cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e instanceof MessagingError) {
      return {
        code: 'broker_unavailable',
        dependency: 'broker',
        message: `the message broker (RabbitMQ) is unavailable or blocking publishers; retry in ${RETRY_AFTER_S} s`,
        reason,
      };
    }
  }
  // 53300: the server has no connection slot left; like an outage, waiting is the answer.
  if (err instanceof DatabaseError || isUnreachable(err) || (err as { code?: unknown }).code === '53300') {
    return {
      code: 'database_unavailable',
      dependency: 'database',
      message:
        `PostgreSQL is unreachable, so this request could not be answered; retry in ${RETRY_AFTER_S} s ` +
        '(a POST /v1/tasks retried with the same idempotency_key is never created twice)',
      reason,
    };
  }
  return undefined;
}

/** `promise`, or a rejection with `message` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Nesting a YAML body may show before it is parsed: the estimate of
 * yamlTextDepth is off by a level here and there; the parsed value is then
 * checked exactly.
 */
const MAX_YAML_TEXT_DEPTH = MAX_BODY_DEPTH + 16;

/**
 * parseTemplate, after a linear scan has refused a YAML text nested far too
 * deep (before the parser spends seconds on it or overflows its stack).
 */
function parseYamlTemplate(yaml: string) {
  const deep = yamlTextDepth(yaml, MAX_YAML_TEXT_DEPTH);
  if (deep.depth > MAX_YAML_TEXT_DEPTH) {
    throw new ValidationError(
      `the template nests deeper than ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH) by line ${deep.line}, the most weft stores; flatten it`,
      '',
    );
  }
  try {
    return parseTemplate(yaml, 'request body');
  } catch (err) {
    if (err instanceof RangeError) {
      throw new ValidationError(`the template nests too deeply to be read (at most ${MAX_JSON_DEPTH} levels, MAX_JSON_DEPTH); flatten it`, '');
    }
    throw err;
  }
}
