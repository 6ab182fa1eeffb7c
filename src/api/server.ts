import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Orchestrator } from '../orchestration/orchestrator.js';
import type { Database } from '../store/database.js';
import type { MessageBus } from '../messaging/types.js';
import type { Logger } from '../shared/logger.js';
import { getTaskViewJson } from '../store/tasks.js';
import { listTemplates } from '../store/templates.js';
import { parseTemplate, validateTemplateObject } from '../core/template/parse.js';
import { TemplateError } from '../core/template/errors.js';
import { ConflictError, NotFoundError, ValidationError, WeftError } from '../shared/errors.js';
import type { LiveEvents } from '../orchestration/live-events.js';
import { ApiAuth, type AuthOptions } from './auth.js';
import { fieldPath, taskId } from './params.js';
import { taskRoutes } from './routes/tasks.js';
import { systemRoutes } from './routes/system.js';
import { catalogRoutes } from './routes/catalog.js';
import { uiRoutes } from './ui.js';

export interface ApiOptions {
  orchestrator: Orchestrator;
  db: Database;
  bus: MessageBus;
  log: Logger;
  /** Largest request body accepted (bytes); a context is stored as JSONB. */
  bodyLimit?: number;
  /** Task ends and step changes for the server-sent events; without it the streams only say hello. */
  liveEvents?: LiveEvents;
  /** Bearer tokens (see auth.ts); always on: with no token stored the API answers loopback callers only. */
  auth?: AuthOptions;
  /** Tasks one token may create per minute (default 6000). */
  createPerMinute?: number;
  /** Serve the dashboard at `/` (default true). */
  ui?: boolean;
}

/**
 * The orchestrator's HTTP API:
 *
 *   POST /v1/tasks                 create → 201 {id}; 400 bad input (names the field), 404 unknown template, 409 repeated idempotency key
 *   GET  /v1/tasks, cancel, retry, server-sent events: routes/tasks.ts; workers, stats: routes/system.ts;
 *        template versions, bench results: routes/catalog.ts; the dashboard at /: ui.ts; tokens: auth.ts
 *   GET  /v1/tasks/:id             task state and every step (state, attempts, result, error, timings)
 *   GET  /v1/tasks/:id/wait        long-poll: returns the moment the task ends (or after timeout_ms, with ended: false)
 *   GET  /v1/templates             registered templates
 *   POST /v1/templates             register a template (YAML or JSON body)
 *   GET  /health                   database and broker
 *   GET  /metrics                  Prometheus text
 *
 * Errors are `{ "error": { "code", "message", "path"? } }`. docs/api.md documents every endpoint.
 */
export function buildApi(options: ApiOptions): FastifyInstance {
  const { orchestrator, db, bus } = options;
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? 32 * 1024 * 1024,
    ajv: { customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false } },
  });
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain'], { parseAs: 'string' }, (_req, body, done) =>
    done(null, { __yaml: body as string }),
  );
  new ApiAuth(db, options.log, options.auth).install(app);

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
    if (err instanceof NotFoundError) return reply.status(404).send({ error: { code: err.code, message: err.message } });
    if (err instanceof ConflictError) return reply.status(409).send({ error: { code: err.code, message: err.message, ...err.details } });
    if (err instanceof WeftError && err.code === 'not_implemented') return reply.status(501).send({ error: { code: err.code, message: err.message } });
    if (err.statusCode === 429) return reply.status(429).send({ error: { code: 'rate_limited', message: err.message } });
    if (err.statusCode === 413) {
      return reply.status(413).send({ error: { code: 'too_large', message: `request body is larger than the limit of ${options.bodyLimit ?? 32 * 1024 * 1024} bytes` } });
    }
    if (err.statusCode && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ error: { code: 'bad_request', message: err.message } });
    }
    options.log.error({ err: err.message, stack: err.stack }, 'request failed');
    const code = err instanceof WeftError ? err.code : 'internal';
    return reply.status(500).send({ error: { code, message: err.message } });
  });

  void app.register(taskRoutes, { orchestrator, db, liveEvents: options.liveEvents ?? orchestrator.taskEvents, createPerMinute: options.createPerMinute });
  void app.register(systemRoutes, { db, bus });
  void app.register(catalogRoutes, { db });
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
    const gone = new AbortController();
    req.raw.once('close', () => gone.abort());
    await orchestrator.waitForTask(id, timeoutMs, gone.signal);
    // The view says whether the task has ended (`ended`), read after the wait.
    const view = await getTaskViewJson(db, id);
    if (!view) throw new NotFoundError(`no task ${id}`);
    return reply.type('application/json; charset=utf-8').send(view);
  });

  app.get('/v1/templates', async () => ({ templates: await listTemplates(db) }));

  app.post('/v1/templates', async (req, reply) => {
    const body = req.body as { __yaml?: string } | Record<string, unknown>;
    const def =
      body && typeof body === 'object' && '__yaml' in body && typeof body.__yaml === 'string'
        ? parseTemplate(body.__yaml, 'request body')
        : validateTemplateObject(body, 'request body');
    const outcome = await orchestrator.templates.register(def);
    if (outcome === 'created') {
      options.log.info({ template: `${def.namespace}/${def.name}@${def.version}`, token: req.apiToken?.name ?? null }, 'template version registered');
    }
    return reply.status(outcome === 'created' ? 201 : 200).send({ namespace: def.namespace, name: def.name, version: def.version, outcome });
  });

  app.get('/health', async (_req, reply) => {
    const dbOk = await db.query('SELECT 1').then(
      () => ({ ok: true, detail: 'ok' }),
      (err: Error) => ({ ok: false, detail: err.message }),
    );
    const broker = await bus.health();
    const ok = dbOk.ok && broker.ok;
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'healthy' : 'unhealthy', database: dbOk, messaging: broker, pool: db.poolStats() });
  });

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', orchestrator.metrics.registry.contentType);
    return orchestrator.metrics.registry.metrics();
  });

  return app;
}
