/**
 * Live events of steps that wait (issue 19), through the HTTP event stream
 * of a watched task (GET /v1/tasks/:id/events, what the dashboard's task view
 * follows): a step entering `waiting` and leaving it (its sleep ended, its
 * wait timed out, it was signalled) is told as `event: step`, like enqueued,
 * running and complete. Each task starts 1 s late, so the stream is open (and
 * the watch registered) before any of its steps moves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Backend, type Engine } from '../support/engine.js';
import { buildApi } from '../../src/api/server.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { silentLogger } from '../../src/shared/logger.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { followEvents, type ServerEvent } from '../support/sse.js';

const TEMPLATES = [
  // Three roots that wait, each ended another way, and a step after them.
  parseTemplate(
    [
      'namespace: live_t',
      'name: roots',
      'version: 1.0.0',
      'steps:',
      '  - { name: nap, type: sleep, duration: 1s }',
      '  - { name: ask, type: wait, timeout: 1500ms, on_timeout: { result: { approved: false } } }',
      '  - { name: poke, type: wait }',
      '  - { name: act, handler: lt.echo, depends_on: [nap, ask, poke] }',
    ].join('\n'),
    'roots.yaml',
  ),
  // A wait that fails when nobody answers within 500 ms (and so its task), to be retried.
  parseTemplate('namespace: live_t\nname: strict\nversion: 1.0.0\nsteps:\n  - { name: ask, type: wait, timeout: 500ms }', 'strict.yaml'),
  // A wait released by its parent's completion.
  parseTemplate(
    'namespace: live_t\nname: after\nversion: 1.0.0\nsteps:\n  - { name: first, handler: lt.echo }\n' +
      '  - { name: approval, type: wait, depends_on: [first] }\n  - { name: act, handler: lt.echo, depends_on: [approval] }',
    'after.yaml',
  ),
];
const HANDLERS = { 'lt.echo': (step: { dependency_results: Record<string, unknown> }) => ({ saw: step.dependency_results }) };

/** The states a stream told for each step, in order. */
function statesByStep(events: ServerEvent[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of events) if (e.event === 'step') (out[e.data.name] ??= []).push(e.data.state);
  return out;
}

describe.each<Backend>(['pg', 'rabbitmq'])('live events of steps that wait (%s)', (backend) => {
  let tdb: TestDatabase;
  let engine: Engine;
  let api: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend, url: tdb.url, templates: TEMPLATES, handlers: HANDLERS, namespaces: ['live_t'] });
    api = buildApi({ orchestrator: engine.orchestrators[0]!, db: engine.db, bus: new PgMessageBus(engine.db, silentLogger()), log: silentLogger(), ui: false });
    await api.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await api?.close();
    await engine?.stop();
    await tdb?.drop();
  });

  const post = (url: string, body: unknown) =>
    fetch(`${base}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  const watchedThen = async <T>(id: string, act: () => Promise<T>): Promise<T> => {
    for (let i = 0; i < 200; i++) {
      const { rows } = await tdb.db.query('SELECT 1 FROM weft.task_watchers WHERE task_id = $1', [id]);
      if (rows.length > 0) return act();
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`the stream of task ${id} never registered its watch`);
  };

  it('tells steps entering waiting when their task starts, and leaving it when the sleep ends, the wait times out or is signalled', async () => {
    const created = await post('/v1/tasks', { namespace: 'live_t', name: 'roots', delay: '1s' });
    expect(created.status).toBe(201);
    const id = ((await created.json()) as { id: string }).id;
    const signals: Array<Promise<Response>> = [];
    const events = await followEvents(
      `${base}/v1/tasks/${id}/events`,
      (evs) => evs.some((e) => e.event === 'task'),
      // Signalled only once the stream said it waits: a stream that never tells it fails this test.
      (e) => {
        if (e.event === 'step' && e.data.name === 'poke' && e.data.state === 'waiting') signals.push(post(`/v1/tasks/${id}/steps/poke/signal`, { ok: 1 }));
      },
    );
    expect(signals).toHaveLength(1);
    expect((await signals[0]!).status).toBe(200);
    expect(events[0]).toEqual({ event: 'hello', data: { task_id: id, state: 'pending', live_steps: true } });
    const states = statesByStep(events);
    expect(states.nap).toEqual(['waiting', 'complete']);
    expect(states.ask).toEqual(['waiting', 'complete']);
    expect(states.poke).toEqual(['waiting', 'complete']);
    expect(states.act).toContain('complete');
    const waiting = events.find((e) => e.event === 'step' && e.data.name === 'nap')!.data;
    expect(waiting).toEqual({ kind: 'step', task_id: id, step_id: expect.any(String), name: 'nap', state: 'waiting', attempts: 0 });
    expect(events.find((e) => e.event === 'task')).toMatchObject({ data: { task_id: id, state: 'complete' } });
  });

  it('tells a wait step that timed out (error) waiting again when its task is retried', async () => {
    const created = await post('/v1/tasks', { namespace: 'live_t', name: 'strict' });
    const id = ((await created.json()) as { id: string }).id;
    expect(await engine.orchestrators[0]!.waitForTask(id, 20_000)).toBe(true);
    const retried: Array<Promise<Response>> = [];
    const events = await followEvents(
      `${base}/v1/tasks/${id}/events`,
      (evs) => evs.some((e) => e.event === 'task'),
      (e) => {
        // Retried once the stream's watch is registered (the statement reads weft.task_watchers).
        if (e.event === 'hello') retried.push(watchedThen(id, () => post(`/v1/tasks/${id}/retry`, {})));
      },
    );
    expect((await retried[0]!).status).toBe(200);
    expect(statesByStep(events).ask).toEqual(['waiting', 'error']);
    expect(events.find((e) => e.event === 'task')).toMatchObject({ data: { task_id: id, state: 'error' } });
  });

  it('tells a wait step entering waiting when its parent completes', async () => {
    const created = await post('/v1/tasks', { namespace: 'live_t', name: 'after', delay: '1s' });
    const id = ((await created.json()) as { id: string }).id;
    const events = await followEvents(
      `${base}/v1/tasks/${id}/events`,
      (evs) => evs.some((e) => e.event === 'step' && e.data.name === 'approval'),
      () => {},
      5_000,
    );
    await post(`/v1/tasks/${id}/steps/approval/signal`, { ok: 1 });
    expect(statesByStep(events).approval?.[0]).toBe('waiting');
  });
});
