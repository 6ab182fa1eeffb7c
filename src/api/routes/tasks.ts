import type { FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { Orchestrator } from '../../orchestration/orchestrator.js';
import type { LiveEvents } from '../../orchestration/live-events.js';
import type { Database } from '../../store/database.js';
import { listTasks } from '../../store/task-list.js';
import { getTaskState } from '../../store/tasks.js';
import { TASK_STATES, type TaskState } from '../../core/states.js';
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import { actor } from '../auth.js';
import { dateParam, intParam, taskId } from '../params.js';
import { openEventStream, type EventStream } from '../sse.js';
import { traceApiTaskCreated, traceClock, traceparentOfTask, tracing } from '../../telemetry/index.js';

export interface TaskRoutesOptions {
  orchestrator: Orchestrator;
  db: Database;
  liveEvents?: LiveEvents;
  /** Tasks one token (or, while the API is open, one address) may create per minute. */
  createPerMinute?: number;
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
  },
} as const;

const retrySchema = {
  anyOf: [
    { type: 'null' },
    { type: 'object', additionalProperties: false, properties: { step: { type: 'string', minLength: 1 } } },
  ],
} as const;

/**
 * Task routes beyond the single-task reads in server.ts:
 *
 *   POST /v1/tasks                 create (rate-limited per token)
 *   GET  /v1/tasks                 list: filters, cursor pagination, counts by state
 *   POST /v1/tasks/:id/cancel      cancel a running task
 *   POST /v1/tasks/:id/retry       retry a failed task, or one step: {"step": "name"}
 *   GET  /v1/tasks/:id/events      server-sent events: `step` and `task` changes of one task
 *   GET  /v1/events                server-sent events: `task` ends of every task
 */
export async function taskRoutes(app: FastifyInstance, opts: TaskRoutesOptions): Promise<void> {
  const { orchestrator, db, liveEvents } = opts;
  const streams = new Set<EventStream>();
  app.addHook('preClose', async () => {
    for (const s of streams) s.close();
  });

  await app.register(rateLimit, { global: false });
  app.post(
    '/v1/tasks',
    {
      schema: { body: createTaskSchema },
      config: {
        rateLimit: {
          max: opts.createPerMinute ?? 6_000,
          timeWindow: 60_000,
          keyGenerator: (req) => (req.apiToken ? `token:${req.apiToken.id}` : `ip:${req.ip}`),
          errorResponseBuilder: (req, ctx) => ({
            statusCode: 429,
            code: 'rate_limited',
            message: `${req.apiToken ? `token ${JSON.stringify(req.apiToken.name)}` : 'this address'} may create ${ctx.max} tasks per minute; try again in ${Math.ceil(ctx.ttl / 1000)} s`,
          }),
        },
      },
    },
    async (req, reply) => {
      const body = req.body as { namespace: string; name: string; version?: string; context?: unknown; idempotency_key?: string };
      const t0 = traceClock();
      const created = await orchestrator.createTask(body);
      if (tracing.enabled) {
        traceApiTaskCreated(created.id, t0, req.headers.traceparent);
        // W3C Trace Context level 2: where the task's trace is (docs/tracing.md).
        void reply.header('traceresponse', traceparentOfTask(created.id));
      }
      return reply.status(201).send({ id: created.id, state: 'running', dispatched: created.dispatched });
    },
  );

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

  app.post('/v1/tasks/:id/cancel', async (req) => {
    const id = taskId(req.params);
    return { id, ...(await orchestrator.cancelTask(id, actor(req))) };
  });

  app.post('/v1/tasks/:id/retry', { schema: { body: retrySchema } }, async (req) => {
    const id = taskId(req.params);
    const step = (req.body as { step?: string } | null)?.step;
    return { id, ...(await orchestrator.retryTask(id, { step, by: actor(req) })) };
  });

  app.get('/v1/tasks/:id/events', async (req, reply) => {
    const id = taskId(req.params);
    const state = await getTaskState(db, id);
    if (!state) throw new NotFoundError(`no task ${id}`);
    const stream = openEventStream(req, reply);
    streams.add(stream);
    stream.onClose(() => streams.delete(stream));
    // The current state first: a change between the client's GET and this
    // subscription is then not missed.
    stream.send('hello', { task_id: id, state, live_steps: liveEvents !== undefined });
    if (liveEvents) stream.onClose(liveEvents.watch(id, (e) => stream.send(e.kind, e)));
  });

  app.get('/v1/events', async (req, reply) => {
    const stream = openEventStream(req, reply);
    streams.add(stream);
    stream.onClose(() => streams.delete(stream));
    stream.send('hello', { live: liveEvents !== undefined });
    if (liveEvents) stream.onClose(liveEvents.onTaskEnd((e) => stream.send('task', { kind: 'task', ...e })));
  });
}
