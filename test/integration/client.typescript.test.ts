/**
 * WeftClient (src/client) against a real orchestrator API on a port, with
 * native workers on the test database: every method, and every error answer
 * as its typed class with the server's code and status.
 */
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { PermanentError } from '../../src/worker/sdk.js';
import type { Wire } from '../../src/core/api-types.js';
import type { ScheduleView } from '../../src/orchestration/schedules.js';
import type { BatchItemResult } from '../../src/orchestration/orchestrator.js';
import type { ScheduleEvent as StoredScheduleEvent } from '../../src/store/schedules.js';
import { untilTask, stepNamed } from '../support/task-view.js';
import {
  ApiConflictError,
  ApiForbiddenError,
  ApiInvalidInputError,
  ApiNotFoundError,
  ApiUnauthorizedError,
  HttpUnreachableError,
  WeftApiError,
  WeftClient,
  type Schedule,
  type ScheduleEvent,
  type TaskBatchResult,
  type TaskStreamEvent,
} from '../../src/client/index.js';

const template = (name: string, steps: string) => parseTemplate(`namespace: t_client\nname: ${name}\nversion: 1.0.0\nsteps:\n${steps}`, `${name}.yaml`);

/** test.blocked holds its step until the test releases it. */
const blocker = {
  release: () => {},
  gate: Promise.resolve(),
  reset() {
    this.gate = new Promise<void>((r) => (this.release = r));
  },
};

/** A port nothing listens on: one the system just handed out and took back. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('WeftClient against a real orchestrator', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  let api: FastifyInstance;
  let url: string;
  let weft: WeftClient;
  let connections = 0;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({
      backend: 'pg',
      url: tdb.url,
      namespaces: ['e2e_linear', 't_client'],
      templates: [
        template('blocked', '  - { name: first, handler: test.blocked }\n  - { name: second, handler: test.echo, depends_on: [first] }'),
        template('fails', '  - { name: explode, handler: test.explode }'),
        template(
          'approval',
          '  - { name: ask, handler: test.echo }\n' +
            '  - { name: approve, type: wait, depends_on: [ask], payload_schema: { type: object, required: [approved], properties: { approved: { type: boolean } } } }\n' +
            '  - { name: after, handler: test.echo, depends_on: [approve] }',
        ),
      ],
      handlers: {
        'test.blocked': async () => {
          await blocker.gate;
          return { released: true };
        },
        'test.echo': () => ({ echoed: true }),
        'test.explode': () => {
          throw new PermanentError('sku A-42 is not in the catalogue');
        },
      } as never,
    });
    api = buildApi({
      orchestrator: engine.orchestrators[0]!,
      db: engine.db,
      bus: new PgMessageBus(engine.db, silentLogger()),
      log: silentLogger(),
      auth: { cacheMs: 0 },
      ui: false,
    });
    api.server.on('connection', () => connections++);
    await api.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
    weft = new WeftClient({ url });
  });
  afterAll(async () => {
    blocker.release();
    await api?.close();
    await engine?.stop();
    await tdb?.drop();
  });

  it('creates a task and waits for its result', async () => {
    const { id, created } = await weft.createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 6 } });
    expect(created).toBe(true);
    const task = await weft.waitForTask(id);
    expect(task).toMatchObject({ id, state: 'complete', ended: true, context: { even_number: 6 } });
    expect(task.steps.map((s) => [s.name, s.state, s.result])).toEqual([
      ['linear_step_1', 'complete', 36],
      ['linear_step_2', 'complete', 1296],
      ['linear_step_3', 'complete', 1679616],
      ['linear_step_4', 'complete', 2821109907456],
    ]);
    expect(typeof task.created_at).toBe('string');
    expect(await weft.getTask(id)).toEqual(task);
  });

  it('keeps one connection alive across calls', async () => {
    const before = connections;
    const { id } = await weft.createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 } });
    await weft.waitForTask(id);
    await weft.getTask(id);
    await weft.listTasks({ limit: 1 });
    expect(connections - before).toBeLessThanOrEqual(1);
  });

  it('creates at most one task per idempotency key, and names the task when the request differs (409)', async () => {
    const req = { namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 4 }, idempotencyKey: 'client-order-1' };
    const first = await weft.createTask(req);
    const again = await weft.createTask(req);
    expect(again).toEqual({ id: first.id, created: false });
    expect((await weft.getTaskByKey('client-order-1')).id).toBe(first.id);
    const err = await weft.createTask({ ...req, context: { even_number: 8 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiConflictError);
    expect(err).toBeInstanceOf(WeftApiError);
    expect(err).toMatchObject({ status: 409, code: 'conflict', taskId: first.id, differs: ['context'], name: 'ApiConflictError' });
    expect((err as Error).message).toContain('already exists');
  });

  it('answers bad input with ApiInvalidInputError naming the field (400)', async () => {
    const err = await weft.createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 7 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiInvalidInputError);
    expect(err).toMatchObject({ status: 400, code: 'invalid_input', path: 'context.even_number' });
    const badState = await weft.listTasks({ state: 'lost' as never }).catch((e: unknown) => e);
    expect(badState).toMatchObject({ status: 400, code: 'invalid_input', path: 'state' });
    await expect(weft.listTasks({ template: 'no-slash' })).rejects.toThrow(/template "no-slash" is not NAMESPACE\/NAME/);
  });

  it('answers unknown tasks and templates with ApiNotFoundError (404)', async () => {
    const id = '01a21e54-5be0-76be-97b1-9441a6c8e351';
    for (const call of [() => weft.getTask(id), () => weft.waitForTask(id), () => weft.cancelTask(id), () => weft.getTaskByKey('never-used')]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiNotFoundError);
      expect(err).toMatchObject({ status: 404, code: 'not_found' });
    }
    const tmpl = await weft.createTask({ namespace: 'e2e_linear', name: 'nope' }).catch((e: unknown) => e);
    expect(tmpl).toBeInstanceOf(ApiNotFoundError);
  });

  it("streams a task's events until it ends", async () => {
    blocker.reset();
    const { id } = await weft.createTask({ namespace: 't_client', name: 'blocked' });
    const seen: TaskStreamEvent[] = [];
    for await (const e of weft.events(id)) {
      seen.push(e);
      if (e.event === 'hello') blocker.release();
    }
    expect(seen[0]).toEqual({ event: 'hello', data: { task_id: id, state: 'running', live_steps: true } });
    expect(seen.at(-1)).toMatchObject({ event: 'task', data: { kind: 'task', task_id: id, state: 'complete' } });
    const completed = seen.filter((e) => e.event === 'step' && e.data.state === 'complete').map((e) => (e.data as { name: string }).name);
    // The task's end may overtake its last step's event (a worker finishing the task's last step ends it in the same statement).
    expect(completed[0]).toBe('first');
    // A task that has ended: the stream says hello with its state and stops.
    const after: TaskStreamEvent[] = [];
    for await (const e of weft.events(id)) after.push(e);
    expect(after).toEqual([{ event: 'hello', data: { task_id: id, state: 'complete', live_steps: true } }]);
  });

  it('gives up a wait at its timeout with the task as it is, then cancels it; a second cancel is a conflict (409)', async () => {
    blocker.reset();
    const { id } = await weft.createTask({ namespace: 't_client', name: 'blocked' });
    const waited = await weft.waitForTask(id, { timeoutMs: 300 });
    expect(waited).toMatchObject({ id, state: 'running', ended: false });
    expect(await weft.cancelTask(id, { reason: 'client test' })).toEqual({ id, state: 'cancelled', interrupted: expect.any(Number) });
    const task = await weft.getTask(id);
    expect(task).toMatchObject({ state: 'cancelled', error: { reason: 'cancelled', by: 'anonymous', message: 'client test' } });
    const again = await weft.cancelTask(id).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(ApiConflictError);
    expect(again).toMatchObject({ status: 409, code: 'conflict' });
    expect((again as Error).message).toContain('has already ended (cancelled)');
    blocker.release();
  });

  it('retries a failed task, lists tasks with filters and reads the history', async () => {
    const { id } = await weft.createTask({ namespace: 't_client', name: 'fails' });
    const failed = await weft.waitForTask(id);
    expect(failed.state).toBe('error');
    expect(failed.steps[0]!.error).toMatchObject({ class: 'PermanentError', message: 'sku A-42 is not in the catalogue' });
    expect(await weft.retryTask(id, { step: 'explode' })).toEqual({ id, state: 'running', enqueued: 1 });
    expect((await weft.waitForTask(id)).state).toBe('error');
    const badStep = await weft.retryTask(id, { step: 'nope' }).catch((e: unknown) => e);
    expect(badStep).toBeInstanceOf(ApiNotFoundError);

    const page = await weft.listTasks({ state: 'error', template: 't_client/fails' });
    expect(page.tasks.map((t) => t.id)).toEqual([id]);
    expect(page.tasks[0]).toMatchObject({ state: 'error', error: { step: 'explode', class: 'PermanentError' } });
    expect(page.counts.error).toBe(1);
    const one = await weft.listTasks({ limit: 1 });
    expect(one.tasks).toHaveLength(1);
    expect(one.next_cursor).toEqual(expect.any(String));
    const next = await weft.listTasks({ limit: 1, cursor: one.next_cursor! });
    expect(next.tasks[0]!.id).not.toBe(one.tasks[0]!.id);

    const history = await weft.taskHistory(id, { step: 'explode' });
    expect(history.transitions.map((t) => t.to)).toContain('error');
    expect(history.transitions.find((t) => t.metadata?.by === 'anonymous')).toBeDefined();
  });

  it('registers templates as YAML or as an object', async () => {
    const yaml = 'namespace: t_client_reg\nname: one\nversion: 1.0.0\nsteps:\n  - { name: a, handler: linear.square }\n';
    expect(await weft.registerTemplate(yaml)).toEqual({ namespace: 't_client_reg', name: 'one', version: '1.0.0', outcome: 'created' });
    expect((await weft.registerTemplate(yaml)).outcome).toBe('unchanged');
    const changed = await weft.registerTemplate(yaml.replace('linear.square', 'linear.cube')).catch((e: unknown) => e);
    expect(changed).toBeInstanceOf(ApiConflictError);
    const bad = await weft.registerTemplate({ namespace: 't_client_reg', name: 'two' }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ApiInvalidInputError);
    expect(bad).toMatchObject({ status: 400, code: 'template_invalid' });
    expect((await weft.listTemplates()).map((t) => `${t.namespace}/${t.name}`)).toContain('t_client_reg/one');
  });

  it('starts a task later: pending with its run_at until then, from runAt (a Date) or delay', async () => {
    const runAt = new Date(Date.now() + 3_600_000);
    const later = await weft.createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 }, runAt });
    const task = await weft.getTask(later.id);
    expect(task.state).toBe('pending');
    expect(Date.parse(task.run_at!)).toBe(runAt.getTime());
    expect(task.steps.every((s) => s.state === 'pending')).toBe(true);
    const delayed = await weft.getTask(
      (await weft.createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 }, delay: '2h' })).id,
    );
    expect(delayed.state).toBe('pending');
    expect(Date.parse(delayed.run_at!) - Date.now()).toBeGreaterThan(3_600_000);
    const bad = await weft
      .createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 }, delay: '15' })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ApiInvalidInputError);
    expect(bad).toMatchObject({ status: 400, path: 'delay' });
    const invalid = await weft.createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', runAt: new Date('soon') }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(TypeError);
    expect((invalid as Error).message).toBe('createTask: runAt is an invalid Date; pass a valid Date or RFC 3339 text');
    for (const id of [later.id, delayed.id]) await weft.cancelTask(id);
  });

  it('signals a wait step, by task and step or by its callback path; 409 when it is not waiting, 400 naming the payload field', async () => {
    const { id } = await weft.createTask({ namespace: 't_client', name: 'approval' });
    const early = await weft.signalStep(id, 'ask', { approved: true }).catch((e: unknown) => e);
    expect(early).toBeInstanceOf(ApiConflictError);
    expect(early).toMatchObject({ status: 409, code: 'conflict' });
    await untilTask(engine.db, id, (v) => stepNamed(v, 'approve').state === 'waiting');
    const wrong = await weft.signalStep(id, 'approve', { approved: 'yes' }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(ApiInvalidInputError);
    expect(wrong).toMatchObject({ status: 400, path: 'payload.approved' });
    expect(await weft.signalStep(id, 'approve', { approved: true })).toEqual({ task_id: id, step: 'approve', state: 'complete' });
    const done = await weft.waitForTask(id, { timeoutMs: 20_000 });
    expect(done.state).toBe('complete');
    expect(done.steps.find((s) => s.name === 'approve')!.result).toEqual({ approved: true });
    const twice = await weft.signalStep(id, 'approve', { approved: false }).catch((e: unknown) => e);
    expect(twice).toBeInstanceOf(ApiConflictError);
    expect(await weft.signalStep(id, 'nope', {}).catch((e: unknown) => e)).toBeInstanceOf(ApiNotFoundError);

    const second = await weft.createTask({ namespace: 't_client', name: 'approval' });
    const waiting = await untilTask(engine.db, second.id, (v) => stepNamed(v, 'approve').state === 'waiting');
    const path = stepNamed(waiting, 'approve').callback_path!;
    expect(await new WeftClient({ url }).signalCallback(path, { approved: false })).toEqual({ task_id: second.id, step: 'approve', state: 'complete' });
    expect((await weft.waitForTask(second.id, { timeoutMs: 20_000 })).steps.find((s) => s.name === 'approve')!.result).toEqual({ approved: false });
    expect(await weft.signalCallback('0'.repeat(64), {}).catch((e: unknown) => e)).toBeInstanceOf(ApiNotFoundError);
  });

  it("creates a batch: a bad item gets its own error, the rest are created; a replay answers 'existing'; long lists go in several requests", async () => {
    const items = [
      { namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 }, idempotencyKey: 'batch-1' },
      { namespace: 'e2e_linear', name: 'nope' },
      { namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 7 } },
      { namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 4 } },
    ];
    const batch = await weft.createTasks(items);
    expect(batch).toMatchObject({ created: 2, existing: 0, failed: 2 });
    expect(batch.results.map((r) => r.index)).toEqual([0, 1, 2, 3]);
    expect(batch.results[1]).toMatchObject({ index: 1, error: { code: 'not_found' } });
    expect(batch.results[2]).toMatchObject({ index: 2, error: { code: 'invalid_input', path: 'context.even_number' } });
    const made = batch.results.filter((r): r is Extract<TaskBatchResult, { id: string }> => 'id' in r);
    for (const r of made) expect((await weft.waitForTask(r.id, { timeoutMs: 20_000 })).state).toBe('complete');

    // Two requests of two items: indexes are the caller's list's, the keyed item answers existing.
    const split = await weft.createTasks([items[3]!, items[0]!, items[2]!, items[3]!], { batchSize: 2 });
    expect(split).toMatchObject({ created: 2, existing: 1, failed: 1 });
    expect(split.results.map((r) => [r.index, 'outcome' in r ? r.outcome : r.error.code])).toEqual([
      [0, 'created'],
      [1, 'existing'],
      [2, 'invalid_input'],
      [3, 'created'],
    ]);
    expect(split.results[1]).toMatchObject({ id: made[0]!.id });
    expect(await weft.createTasks([])).toEqual({ created: 0, existing: 0, failed: 0, results: [] });
    await expect(weft.createTasks(items, { batchSize: 0 })).rejects.toThrow('createTasks: batchSize must be an integer >= 1, got 0');
  });

  it('creates, reads, pauses, resumes and deletes a schedule; names the field of a bad one (400) and a taken name (409)', async () => {
    const created = await weft.createSchedule({
      name: 'client-nightly',
      template: 'e2e_linear/mathematical_sequence',
      cron: '0 2 * * *',
      timezone: 'Europe/Berlin',
      context: { even_number: 2 },
      catchUp: 'none',
    });
    expect(created).toMatchObject({
      name: 'client-nightly',
      namespace: 'e2e_linear',
      template: 'mathematical_sequence',
      cron: '0 2 * * *',
      timezone: 'Europe/Berlin',
      overlap: 'skip',
      catch_up: 'none',
      paused: false,
      source: 'api',
    });
    expect(created.next_firings).toHaveLength(5);
    expect((await weft.listSchedules()).map((s) => s.name)).toContain('client-nightly');
    const paused = await weft.pauseSchedule('client-nightly');
    expect(paused).toMatchObject({ paused: true, next_firings: [] });
    expect((await weft.resumeSchedule('client-nightly')).paused).toBe(false);
    const read = await weft.getSchedule('client-nightly', { events: 10 });
    expect(read.events.map((e) => e.kind)).toEqual(['resumed', 'paused', 'created']);
    expect(read.events[0]!.actor).toBe('anonymous');
    expect(await weft.deleteSchedule('client-nightly')).toEqual({ name: 'client-nightly', deleted: true });
    expect(await weft.getSchedule('client-nightly').catch((e: unknown) => e)).toBeInstanceOf(ApiNotFoundError);

    const badCron = await weft
      .createSchedule({ name: 'client-bad', template: 'e2e_linear/mathematical_sequence', cron: 'every night' })
      .catch((e: unknown) => e);
    expect(badCron).toBeInstanceOf(ApiInvalidInputError);
    expect(badCron).toMatchObject({ status: 400, path: 'cron' });
    const badContext = await weft
      .createSchedule({ name: 'client-bad', template: 'e2e_linear/mathematical_sequence', cron: '0 2 * * *', context: { even_number: 3 } })
      .catch((e: unknown) => e);
    expect(badContext).toMatchObject({ status: 400, path: 'context.even_number' });
    await weft.createSchedule({
      name: 'client-twice',
      template: 'e2e_linear/mathematical_sequence',
      cron: '0 2 * * *',
      context: { even_number: 2 },
      paused: true,
    });
    const taken = await weft
      .createSchedule({ name: 'client-twice', template: 'e2e_linear/mathematical_sequence', cron: '0 3 * * *', context: { even_number: 2 } })
      .catch((e: unknown) => e);
    expect(taken).toBeInstanceOf(ApiConflictError);
    expect(taken).toMatchObject({ status: 409, code: 'conflict' });
    await weft.deleteSchedule('client-twice');
  });

  it('types the batch and schedule answers as the server builds them', () => {
    expectTypeOf<Wire<ScheduleView>>().toMatchTypeOf<Schedule>();
    expectTypeOf<Schedule>().toMatchTypeOf<Wire<ScheduleView>>();
    expectTypeOf<Wire<StoredScheduleEvent>>().toEqualTypeOf<ScheduleEvent>();
    expectTypeOf<BatchItemResult>().toEqualTypeOf<TaskBatchResult>();
  });

  it('reports an orchestrator that is not there as HttpUnreachableError', async () => {
    const port = await closedPort();
    const nowhere = new WeftClient({ url: `http://127.0.0.1:${port}`, timeoutMs: 2_000 });
    const err = await nowhere.getTask('01a21e54-5be0-76be-97b1-9441a6c8e351').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpUnreachableError);
    expect((err as Error).message).toBe(
      `GET http://127.0.0.1:${port}/v1/tasks/01a21e54-5be0-76be-97b1-9441a6c8e351: ECONNREFUSED (nothing listens there: is the orchestrator running, and is the URL right?)`,
    );
    expect(() => new WeftClient({ url: 'localhost:8080' })).toThrow(/is not http\(s\)/);
  });

  // Last: once a token exists every call needs one.
  it('sends tokens: 401 without or with a wrong one, 403 for a scope too low, and manages tokens as admin', async () => {
    const admin = await weft.createToken('client-admin', ['admin']);
    expect(admin).toMatchObject({ name: 'client-admin', scopes: ['admin'], token: expect.stringMatching(/^weft_/) });
    const asAdmin = new WeftClient({ url, token: admin.token });
    const reader = await asAdmin.createToken('client-reader', ['read']);

    const none = await weft.listTasks().catch((e: unknown) => e);
    expect(none).toBeInstanceOf(ApiUnauthorizedError);
    expect(none).toMatchObject({ status: 401, code: 'token_required' });
    const wrong = await new WeftClient({ url, token: 'weft_not-a-token' }).listTasks().catch((e: unknown) => e);
    expect(wrong).toMatchObject({ status: 401, code: 'token_invalid', name: 'ApiUnauthorizedError' });

    const asReader = new WeftClient({ url, token: reader.token });
    expect((await asReader.listTasks({ limit: 1 })).tasks).toHaveLength(1);
    const denied = await asReader.createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 2 } }).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(ApiForbiddenError);
    expect(denied).toMatchObject({ status: 403, code: 'forbidden' });
    expect(await asReader.listTokens().catch((e: unknown) => e)).toBeInstanceOf(ApiForbiddenError);

    expect((await asAdmin.listTokens()).map((t) => t.name)).toEqual(['client-admin', 'client-reader']);
    expect((await asAdmin.revokeToken('client-reader')).revoked_at).toEqual(expect.any(String));
    expect((await asAdmin.listTokens()).map((t) => t.name)).toEqual(['client-admin']);
    expect((await asAdmin.listTokens({ all: true })).map((t) => t.name)).toEqual(['client-admin', 'client-reader']);
    expect(await asReader.listTasks().catch((e: unknown) => e)).toMatchObject({ status: 401, code: 'token_invalid' });
    expect(await asAdmin.revokeToken('client-reader').catch((e: unknown) => e)).toBeInstanceOf(ApiNotFoundError);
    expect(await asAdmin.createToken('client-admin', ['read']).catch((e: unknown) => e)).toBeInstanceOf(ApiConflictError);
  });
});
