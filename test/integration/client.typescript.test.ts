/**
 * WeftClient (src/client) against a real orchestrator API on a port, with
 * native workers on the test database: every method, and every error answer
 * as its typed class with the server's code and status.
 */
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { PermanentError } from '../../src/worker/sdk.js';
import {
  ApiConflictError,
  ApiForbiddenError,
  ApiInvalidInputError,
  ApiNotFoundError,
  ApiUnauthorizedError,
  HttpUnreachableError,
  WeftApiError,
  WeftClient,
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
