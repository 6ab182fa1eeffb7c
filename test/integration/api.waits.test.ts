/**
 * The HTTP side of steps and tasks that wait (issue 19): POST /v1/tasks with
 * `delay` / `run_at` (201 pending with its run_at; 400 naming the field), the
 * signal route (200; 400 naming the payload's field; 409 for a step not
 * waiting) and a wait step's callback URL, which needs no API token while
 * every other route does, and answers 404 to a wrong token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { createToken } from '../../src/store/tokens.js';
import { getTaskView } from '../../src/store/tasks.js';

describe('HTTP API: delayed starts, signals and callback URLs', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  let api: FastifyInstance;
  let token: string;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend: 'pg', url: tdb.url, namespaces: ['e2e_waits'] });
    api = buildApi({ orchestrator: engine.orchestrators[0]!, db: engine.db, bus: new PgMessageBus(engine.db, silentLogger()), log: silentLogger(), ui: false });
    await api.ready();
    token = (await createToken(engine.db, 'writer', ['write'])).token;
  });
  afterAll(async () => {
    await api?.close();
    await engine?.stop();
    await tdb?.drop();
  });

  const post = (url: string, payload: unknown, auth = true) =>
    api.inject({
      method: 'POST',
      url,
      payload: JSON.stringify(payload),
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) },
    });
  const view = async (id: string) => (await api.inject({ method: 'GET', url: `/v1/tasks/${id}`, headers: { authorization: `Bearer ${token}` } })).json();

  /** An e2e_waits/human_approval task whose manager_approval step waits. */
  async function waitingApproval(): Promise<{ id: string; callback: string }> {
    const created = await post('/v1/tasks', { namespace: 'e2e_waits', name: 'human_approval', context: { amount: 120, requester: 'ada' } });
    expect(created.statusCode).toBe(201);
    const id = created.json().id as string;
    for (let i = 0; i < 400; i++) {
      const step = (await view(id)).steps.find((s: { name: string }) => s.name === 'manager_approval');
      if (step.state === 'waiting') return { id, callback: step.callback_path };
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`manager_approval of ${id} never waited`);
  }

  it('POST /v1/tasks with a delay answers 201 pending with its run_at, which GET shows; a bad one is a 400 naming the field', async () => {
    const created = await post('/v1/tasks', { namespace: 'e2e_waits', name: 'reminder', context: { order: 1 }, delay: '1h' });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ state: 'pending', dispatched: 0, run_at: expect.any(String) });
    const got = await view(created.json().id);
    expect(got.state).toBe('pending');
    expect(new Date(got.run_at).toISOString()).toBe(created.json().run_at);

    const bad = await post('/v1/tasks', { namespace: 'e2e_waits', name: 'reminder', delay: 'soon' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ path: 'delay' });
    expect(bad.json().error.message).toContain('delay "soon" is not a duration');
  });

  it('the signal route completes the step (200) and the decision after it routes on the payload; a second signal is a 409', async () => {
    const { id } = await waitingApproval();
    const wrong = await post(`/v1/tasks/${id}/steps/manager_approval/signal`, { approved: 'yes please' });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().error).toMatchObject({ path: 'payload.approved' });
    const extra = await post(`/v1/tasks/${id}/steps/manager_approval/signal`, { approved: true, amount: 5 });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().error.message).toContain("payload.amount is not allowed by the step's payload_schema");

    const ok = await post(`/v1/tasks/${id}/steps/manager_approval/signal`, { approved: true, comment: 'fine' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ task_id: id, step: 'manager_approval', state: 'complete' });
    expect(await engine.orchestrators[0]!.waitForTask(id, 20_000)).toBe(true);
    const done = (await getTaskView(engine.db, id))!;
    expect(done.state).toBe('complete');
    expect(done.steps.map((s) => s.name).sort()).toEqual(['fulfil', 'manager_approval', 'request', 'routing']);

    const again = await post(`/v1/tasks/${id}/steps/manager_approval/signal`, { approved: false });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.message).toContain('is complete, not waiting');
  });

  it('the callback URL needs no API token (the signal route does), and a wrong token is a 404', async () => {
    const { id, callback } = await waitingApproval();
    const noToken = await post(`/v1/tasks/${id}/steps/manager_approval/signal`, { approved: false }, false);
    expect(noToken.statusCode).toBe(401);
    const wrong = await post(`/v1/callbacks/${'0'.repeat(64)}`, { approved: false }, false);
    expect(wrong.statusCode).toBe(404);
    const malformed = await post('/v1/callbacks/guess', { approved: false }, false);
    expect(malformed.statusCode).toBe(404);

    const ok = await post(callback, { approved: false, comment: 'over budget' }, false);
    expect(ok.statusCode).toBe(200);
    expect(await engine.orchestrators[0]!.waitForTask(id, 20_000)).toBe(true);
    const done = (await getTaskView(engine.db, id))!;
    expect(done.steps.find((s) => s.name === 'manager_approval')!.result).toEqual({ approved: false, comment: 'over budget' });
    expect(done.steps.map((s) => s.name).sort()).toEqual(['manager_approval', 'notify_rejected', 'request', 'routing']);
    const { rows } = await engine.db.query<{ metadata: Record<string, unknown> }>(
      `SELECT metadata FROM weft.step_transitions WHERE step_id = $1 AND from_state = 'waiting'`,
      [done.steps.find((s) => s.name === 'manager_approval')!.id],
    );
    expect(rows[0]!.metadata).toMatchObject({ reason: 'signalled', by: 'callback' });
  });
});
