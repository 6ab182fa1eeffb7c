import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CreateTaskRequest, Orchestrator } from '../../orchestration/orchestrator.js';
import type { LiveEvent, LiveEvents } from '../../orchestration/live-events.js';
import type { Database } from '../../store/database.js';
import { listTasks } from '../../store/task-list.js';
import { getTaskState, getTaskViewJson, taskForIdempotentRequest, taskIdByIdempotencyKey } from '../../store/tasks.js';
import { taskHistory } from '../../store/history.js';
import { TASK_STATES, type TaskState } from '../../core/states.js';
import { ConflictError, NotFoundError, ValidationError } from '../../shared/errors.js';
import { assertStorable, assertStorableText } from '../json-body.js';
import { actor, type ApiAuth } from '../auth.js';
import { perTokenRateLimit } from '../rate-limits.js';
import { dateParam, intParam, taskId } from '../params.js';
import { openEventStream, type EventStream } from '../sse.js';
import { traceApiTaskCreated, traceClock, traceparentOfTask, tracing } from '../../telemetry/index.js';

export interface TaskRoutesOptions {
  orchestrator: Orchestrator;
  db: Database;
  liveEvents?: LiveEvents;
  /** Tasks one token may create, and retries it may start, per minute (see perTokenRateLimit). */
  createPerMinute: number;
  /** Ends event streams whose token is revoked. */
  auth: ApiAuth;
}

const createTaskSchema = {
  type: 'object',
  required: ['namespace', 'name'],
  additionalProperties: false,
  properties: {
    namespace: { type: 'string', minLength: 1 },
    name: { type: 'string', minLength: 1 },
    version: { type: 'string', minLength: 1 },
    context: {},
    idempotency_key: { type: 'string', minLength: 1, maxLength: 200 },
    // A delayed start (docs/api.md): a time, or a duration from now; checked by Orchestrator.createTask.
    run_at: { type: 'string', minLength: 1, maxLength: 100 },
    delay: { type: 'string', minLength: 1, maxLength: 100 },
  },
} as const;

/** What POST /v1/tasks/check reads: a task request without its idempotency key. */
const checkTaskSchema = {
  ...createTaskSchema,
  properties: {
    namespace: createTaskSchema.properties.namespace,
    name: createTaskSchema.properties.name,
    version: createTaskSchema.properties.version,
    context: {},
  },
} as const;

/** A cancel may say why (kept in the task's audit row and error); 1 … 1000 characters. */
const cancelSchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { reason: { type: 'string', minLength: 1, maxLength: 1000 } },
} as const;

/** Most transitions one history answer holds (a 1000-step task has about 4000). */
const HISTORY_LIMIT = 10_000;

const retrySchema = {
  anyOf: [{ type: 'null' }, { type: 'object', additionalProperties: false, properties: { step: { type: 'string', minLength: 1 } } }],
} as const;

/**
 * Task routes beyond the single-task reads in server.ts:
 *
 *   POST /v1/tasks                 create (rate-limited per token); a repeated idempotency key answers
 *                                  200 with the existing task when the request is the same, 409 naming it otherwise
 *   POST /v1/tasks/check           check a task request's context against its template's input_schema, creating nothing
 *   GET  /v1/tasks                 list: filters, cursor pagination, counts by state
 *   GET  /v1/tasks/by-key/:key     the task created with this idempotency key
 *   POST /v1/tasks/:id/cancel      cancel a running task, optionally saying why: {"reason": "…"}
 *   POST /v1/tasks/:id/retry       retry a failed or cancelled task, or one step: {"step": "name"}
 *   POST /v1/tasks/:id/steps/:name/signal   complete a waiting `wait` step: the body is its result
 *   POST /v1/callbacks/:token      the same for the step holding this callback token, without an API token
 *   GET  /v1/tasks/:id/history     the audit trail: every transition of the task and its steps (or one step's), who and why
 *   GET  /v1/tasks/:id/events      server-sent events: `step` and `task` changes of one task
 *   GET  /v1/events                server-sent events: every task's start (`task_started`) and end (`task`)
 */
export async function taskRoutes(app: FastifyInstance, opts: TaskRoutesOptions): Promise<void> {
  const { orchestrator, db, liveEvents } = opts;
  const streams = new Set<EventStream>();
  // On close (SIGTERM) every stream ends at once, saying why: an EventSource reconnects by itself
  // (to another orchestrator behind the same address, or this one restarted).
  app.addHook('preClose', async () => {
    for (const s of streams) {
      s.send('shutdown', { message: 'this orchestrator is shutting down; reconnect', retry_after_ms: 1_000 });
      s.close();
    }
  });

  /** An event stream that ends at shutdown (above) and when its token is revoked. */
  function openStream(req: FastifyRequest, reply: FastifyReply): EventStream {
    const stream = openEventStream(req, reply);
    streams.add(stream);
    stream.onClose(() => streams.delete(stream));
    stream.onClose(
      opts.auth.holdOpen(req, (message) => {
        stream.send('revoked', { message });
        stream.close();
      }),
    );
    return stream;
  }

  app.post(
    '/v1/tasks',
    { schema: { body: createTaskSchema }, config: { rateLimit: perTokenRateLimit('create', 'tasks', opts.createPerMinute, 'WEFT_TASK_RATE_LIMIT') } },
    async (req, reply) => {
      const body = req.body as CreateTaskRequest;
      // Values PostgreSQL would refuse (or that no handler could parse) are the caller's to fix: 400 naming the path.
      if (!req.bodyStorable) {
        assertStorable(body.context ?? {}, 'context');
        assertStorableText({ namespace: body.namespace, name: body.name, version: body.version, idempotency_key: body.idempotency_key }, '');
      }
      try {
        const t0 = traceClock();
        const created = await orchestrator.createTask(body);
        if (tracing.enabled) {
          traceApiTaskCreated(created.id, t0, req.headers.traceparent);
          // W3C Trace Context level 2: where the task's trace is (docs/tracing.md).
          void reply.header('traceresponse', traceparentOfTask(created.id));
        }
        const started = created.run_at === undefined || created.run_at.getTime() <= Date.now();
        return reply.status(201).send({
          id: created.id,
          state: started ? 'running' : 'pending',
          dispatched: created.dispatched,
          ...(created.run_at ? { run_at: created.run_at.toISOString() } : {}),
        });
      } catch (err) {
        if (!(err instanceof ConflictError) || body.idempotency_key === undefined) throw err;
        return replayIdempotent(body as typeof body & { idempotency_key: string }, reply, err);
      }
    },
  );

  /**
   * A create repeated with the same idempotency key (a client's retry after a
   * lost answer): the same request gets the existing task (200), a different
   * one a 409 naming the task and the fields that differ.
   */
  async function replayIdempotent(
    body: { namespace: string; name: string; version?: string; context?: unknown; idempotency_key: string },
    reply: FastifyReply,
    conflict: ConflictError,
  ) {
    const existing = await taskForIdempotentRequest(db, body.idempotency_key, { ...body, context: body.context ?? {} });
    if (!existing) throw conflict; // deleted (retention) between the insert and this read: report the conflict as it was
    if (existing.differs.length > 0) {
      throw new ConflictError(
        `a task with idempotency_key ${JSON.stringify(body.idempotency_key)} already exists (${existing.id}) and was created with a different ` +
          `${existing.differs.join(', ')}; use a new key to create another task, or GET /v1/tasks/${existing.id}`,
        { task_id: existing.id, differs: existing.differs },
      );
    }
    const view = await getTaskViewJson(db, existing.id);
    if (!view) throw conflict;
    return reply.status(200).header('location', `/v1/tasks/${existing.id}`).type('application/json; charset=utf-8').send(view);
  }

  // A task request checked against its template's input_schema, creating nothing: the dashboard's
  // New-task form shows the problems as the server words them (and needs no schema compiler of its own).
  app.post('/v1/tasks/check', { schema: { body: checkTaskSchema } }, async (req) => {
    const body = req.body as { namespace: string; name: string; version?: string; context?: unknown };
    if (!req.bodyStorable) assertStorable(body.context ?? {}, 'context');
    const { def, checkInput } = await orchestrator.templates.get(body.namespace, body.name, body.version);
    const check = checkInput(body.context ?? {});
    return { namespace: def.namespace, name: def.name, version: def.version, ...check };
  });

  app.get('/v1/tasks/by-key/:key', async (req, reply) => {
    const key = (req.params as { key: string }).key;
    assertStorableText(key, 'key');
    const id = await taskIdByIdempotencyKey(db, key);
    const view = id ? await getTaskViewJson(db, id) : undefined;
    if (!view) throw new NotFoundError(`no task has idempotency_key ${JSON.stringify(key)}`);
    return reply.type('application/json; charset=utf-8').send(view);
  });

  app.get('/v1/tasks', async (req) => {
    const q = req.query as Record<string, string | undefined>;
    if (q.state !== undefined && q.state !== '' && !(TASK_STATES as readonly string[]).includes(q.state)) {
      throw new ValidationError(`state must be one of ${TASK_STATES.join(', ')}, got ${JSON.stringify(q.state)}`, 'state');
    }
    return listTasks(
      db,
      {
        state: (q.state || undefined) as TaskState | undefined,
        namespace: q.namespace || undefined,
        name: q.name || undefined,
        created_after: dateParam(q.created_after, 'created_after'),
        created_before: dateParam(q.created_before, 'created_before'),
        q: q.q?.trim() || undefined,
      },
      { limit: intParam(q.limit, 'limit', 50, 1, 500), cursor: q.cursor || undefined },
    );
  });

  app.post('/v1/tasks/:id/cancel', { schema: { body: cancelSchema } }, async (req) => {
    const id = taskId(req.params);
    const reason = (req.body as { reason?: string } | null)?.reason?.trim();
    if (reason !== undefined) assertStorableText(reason, 'reason');
    return { id, ...(await orchestrator.cancelTask(id, actor(req), reason || undefined)) };
  });

  app.post(
    '/v1/tasks/:id/retry',
    { schema: { body: retrySchema }, config: { rateLimit: perTokenRateLimit('start', 'retries', opts.createPerMinute, 'WEFT_TASK_RATE_LIMIT') } },
    async (req) => {
      const id = taskId(req.params);
      const step = (req.body as { step?: string } | null)?.step;
      return { id, ...(await orchestrator.retryTask(id, { step, by: actor(req) })) };
    },
  );

  // A signal's body is the step's result as sent (any JSON; none is null), checked against the step's payload_schema.
  app.post('/v1/tasks/:id/steps/:name/signal', async (req) => {
    const id = taskId(req.params);
    const step = (req.params as { name: string }).name;
    if (!req.bodyStorable) assertStorable(req.body ?? null, 'payload');
    return orchestrator.signalStep({ task: id, step }, req.body ?? null, actor(req));
  });

  // The token is the capability (steps.signal_token: 244 random bits), so no API token is asked for: another
  // service's webhook can call it. A wrong token is a 404, the same answer as a step that never existed.
  app.post('/v1/callbacks/:token', { config: { scope: 'open' } }, async (req) => {
    const token = (req.params as { token: string }).token;
    if (!/^[0-9a-f]{64}$/.test(token))
      throw new NotFoundError("no step has this callback token; copy the callback URL from the task's step (GET /v1/tasks/:id)");
    if (!req.bodyStorable) assertStorable(req.body ?? null, 'payload');
    return orchestrator.signalStep({ token }, req.body ?? null, 'callback');
  });

  app.get('/v1/tasks/:id/history', async (req) => {
    const id = taskId(req.params);
    const q = req.query as { step?: string; limit?: string };
    const step = q.step === undefined || q.step === '' ? undefined : q.step;
    if (step !== undefined) assertStorableText(step, 'step');
    const history = await taskHistory(db, id, { step, limit: intParam(q.limit, 'limit', HISTORY_LIMIT, 1, HISTORY_LIMIT) });
    if (history) return { task_id: id, ...history };
    if (step !== undefined && (await getTaskState(db, id))) throw new NotFoundError(`task ${id} has no step ${JSON.stringify(step)}`);
    throw new NotFoundError(`no task ${id}`);
  });

  app.get('/v1/tasks/:id/events', async (req, reply) => {
    const id = taskId(req.params);
    // Subscribed first, then the state read, then `hello`: a change committed after the
    // subscription is told (held until `hello` is sent), one before it is in the state.
    let stream: EventStream | undefined;
    const early: LiveEvent[] = [];
    const unwatch = liveEvents ? await liveEvents.watch(id, (e) => (stream ? stream.send(e.kind, e) : early.push(e))) : () => undefined;
    const state = await getTaskState(db, id).catch((err: unknown) => {
      unwatch();
      throw err;
    });
    if (!state) {
      unwatch();
      throw new NotFoundError(`no task ${id}`);
    }
    stream = openStream(req, reply);
    stream.onClose(unwatch);
    stream.send('hello', { task_id: id, state, live_steps: liveEvents !== undefined });
    for (const e of early) stream.send(e.kind, e);
  });

  app.get('/v1/events', async (req, reply) => {
    const stream = openStream(req, reply);
    stream.send('hello', { live: liveEvents !== undefined });
    if (liveEvents) {
      stream.onClose(liveEvents.onTaskEnd((e) => stream.send('task', { kind: 'task', ...e })));
      stream.onClose(liveEvents.onTaskStart((e) => stream.send('task_started', { kind: 'task_started', ...e })));
    }
  });
}
