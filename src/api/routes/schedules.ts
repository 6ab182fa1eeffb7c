import type { FastifyInstance } from 'fastify';
import type { Orchestrator } from '../../orchestration/orchestrator.js';
import { OVERLAP_POLICIES, CATCH_UP_POLICIES, type ScheduleInput } from '../../core/schedule.js';
import { assertStorable, assertStorableText } from '../json-body.js';
import { actor } from '../auth.js';
import { intParam } from '../params.js';

export interface ScheduleRoutesOptions {
  orchestrator: Orchestrator;
}

const createScheduleSchema = {
  type: 'object',
  required: ['name', 'template', 'cron'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    template: { type: 'string', minLength: 1, maxLength: 300 },
    cron: { type: 'string', minLength: 1, maxLength: 200 },
    timezone: { type: 'string', minLength: 1, maxLength: 100 },
    context: {},
    overlap: { type: 'string', enum: OVERLAP_POLICIES },
    catch_up: { type: 'string', enum: CATCH_UP_POLICIES },
    paused: { type: 'boolean' },
  },
} as const;

/**
 * Schedules (docs/schedules.md): a template run on a cron expression in a time zone.
 *
 *   POST   /v1/schedules               create → 201; 400 naming the field (cron, timezone, template, context, ...); 409 name taken
 *   GET    /v1/schedules               every schedule with its next firings
 *   GET    /v1/schedules/:name         one, with its next firings and latest audit rows (?events=N, default 20)
 *   POST   /v1/schedules/:name/pause   stop firing
 *   POST   /v1/schedules/:name/resume  fire again from now on (the pause's firings are not caught up)
 *   DELETE /v1/schedules/:name         delete it (its audit rows stay)
 *
 * Reads need the `read` scope, the rest `write`, as tasks do (auth.ts).
 */
export async function scheduleRoutes(app: FastifyInstance, opts: ScheduleRoutesOptions): Promise<void> {
  const book = opts.orchestrator.schedules;
  const nameOf = (params: unknown) => {
    const name = (params as { name: string }).name;
    assertStorableText(name, 'name');
    return name;
  };

  app.post('/v1/schedules', { schema: { body: createScheduleSchema } }, async (req, reply) => {
    const body = req.body as ScheduleInput & { paused?: boolean };
    if (!req.bodyStorable) {
      assertStorable(body.context ?? {}, 'context');
      assertStorableText({ name: body.name, template: body.template, cron: body.cron, timezone: body.timezone }, '');
    }
    const { schedule } = await book.save(body, { actor: actor(req), paused: body.paused });
    return reply.status(201).header('location', `/v1/schedules/${schedule.name}`).send(schedule);
  });

  app.get('/v1/schedules', async () => ({ schedules: await book.list() }));

  app.get('/v1/schedules/:name', async (req) => {
    const q = req.query as { events?: string };
    return book.get(nameOf(req.params), intParam(q.events, 'events', 20, 0, 1000));
  });

  app.post('/v1/schedules/:name/pause', async (req) => book.pause(nameOf(req.params), actor(req)));
  app.post('/v1/schedules/:name/resume', async (req) => book.resume(nameOf(req.params), actor(req)));

  app.delete('/v1/schedules/:name', async (req) => {
    const name = nameOf(req.params);
    await book.delete(name, actor(req));
    return { name, deleted: true };
  });
}
