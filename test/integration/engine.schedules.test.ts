/**
 * Schedules on a real PostgreSQL with two orchestrators sweeping at once:
 * one task per firing, catch-up after every orchestrator was down, pause and
 * resume, the overlap policies, and /v1/schedules. The cron fires every
 * second (six fields), so no test waits minutes. No worker runs: a fired
 * task stays running, which is what the overlap policies are about.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { PgMessageBus } from '../../src/messaging/pg.js';
import { Orchestrator } from '../../src/orchestration/orchestrator.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { buildApi } from '../../src/api/server.js';
import { silentLogger } from '../../src/shared/logger.js';
import { processId } from '../../src/shared/ids.js';
import { ValidationError } from '../../src/shared/errors.js';
import { createToken } from '../../src/store/tokens.js';

const log = silentLogger();
const TEMPLATE = parseTemplate(
  [
    'namespace: t_sched',
    'name: hold',
    'version: 1.0.0',
    'input_schema: { type: object, properties: { n: { type: integer } } }',
    'steps:',
    '  - { name: only, handler: test.hold }',
  ].join('\n'),
  'hold.yaml',
);
const EVERY_SECOND = '* * * * * *';

interface Running {
  orchestrators: Orchestrator[];
  stop(): Promise<void>;
}

/** `n` orchestrators, each with its own pool and bus, sweeping every 100 ms. */
async function startOrchestrators(url: string, n: number, graceMs = 60_000): Promise<Running> {
  const parts: Array<{ db: Database; bus: PgMessageBus; orch: Orchestrator }> = [];
  for (let i = 0; i < n; i++) {
    const db = await openDatabase({ url, log, max: 6 });
    const bus = new PgMessageBus(db, log, { pollIntervalMs: 200 });
    const orch = new Orchestrator({ db, bus, log, processId: processId(`sched${i}`), pollIntervalMs: 100, scheduleGraceMs: graceMs });
    if (i === 0) await orch.registerTemplates([TEMPLATE]);
    await orch.start();
    parts.push({ db, bus, orch });
  }
  return {
    orchestrators: parts.map((p) => p.orch),
    async stop() {
      for (const p of parts) {
        await p.orch.stop();
        await p.bus.close();
        await p.db.close();
      }
    },
  };
}

interface EventRow {
  kind: string;
  fire_at: Date | null;
  task_id: string | null;
  actor: string | null;
  detail: Record<string, any> | null;
  at: Date;
}

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('schedules', () => {
  let tdb: TestDatabase;
  let running: Running | undefined;
  const events = async (name: string, kind?: string) =>
    (
      await tdb.db.query<EventRow>(
        `SELECT kind, fire_at, task_id, actor, detail, at FROM weft.schedule_events WHERE schedule = $1 AND ($2::text IS NULL OR kind = $2) ORDER BY id`,
        [name, kind ?? null],
      )
    ).rows;
  const tasksOf = async (name: string) =>
    (
      await tdb.db.query<{ id: string; state: string; idempotency_key: string; context: unknown }>(
        `SELECT id, state, idempotency_key, context FROM weft.tasks WHERE idempotency_key LIKE $1 ORDER BY idempotency_key`,
        [`schedule:${name}:%`],
      )
    ).rows;
  const secondsOf = (rows: EventRow[]) => rows.map((r) => r.fire_at!.getTime() / 1000);

  beforeAll(async () => {
    tdb = await createTestDatabase();
  });
  afterEach(async () => {
    await running?.stop();
    running = undefined;
  });
  afterAll(async () => {
    await tdb?.drop();
  });

  it('with two orchestrators each firing creates exactly one task, and no second is skipped', async () => {
    running = await startOrchestrators(tdb.url, 2);
    const [a] = running.orchestrators;
    await a!.schedules.save(
      { name: 'both', template: 't_sched/hold', cron: EVERY_SECOND, overlap: 'allow', catch_up: 'all', context: { n: 7 } },
      { actor: 'test' },
    );
    await until(
      'five firings',
      () => events('both', 'fired'),
      (rows) => rows.length >= 5,
    );
    await a!.schedules.pause('both', 'test');
    const fired = await events('both', 'fired');
    const tasks = await tasksOf('both');
    expect(tasks).toHaveLength(fired.length);
    expect(new Set(fired.map((f) => f.task_id)).size).toBe(fired.length);
    expect(tasks.map((t) => t.id).sort()).toEqual(fired.map((f) => f.task_id).sort());
    expect(tasks.every((t) => JSON.stringify(t.context) === '{"n":7}')).toBe(true);
    // Consecutive seconds: none missed, none twice.
    const secs = secondsOf(fired);
    secs.forEach((s, i) => i > 0 && expect(s - secs[i - 1]!).toBe(1));
    expect(await events('both', 'missed')).toEqual([]);
  });

  it.each(['none', 'last', 'all'] as const)(
    'catch_up %s: firings missed while every orchestrator was down are caught up per the policy',
    async (policy) => {
      const name = `down_${policy}`;
      const grace = 2_000;
      running = await startOrchestrators(tdb.url, 2, grace);
      await running.orchestrators[0]!.schedules.save(
        { name, template: 't_sched/hold', cron: EVERY_SECOND, overlap: 'allow', catch_up: policy },
        { actor: 'test' },
      );
      await until(
        'a firing',
        () => events(name, 'fired'),
        (rows) => rows.length >= 1,
      );
      await running.stop();
      running = undefined;
      const before = (await events(name, 'fired')).length;
      await sleep(5_500);
      running = await startOrchestrators(tdb.url, 2, grace);
      await until(
        'firings after the restart',
        () => events(name, 'fired'),
        (rows) => rows.length >= before + 2,
      );
      await running.orchestrators[0]!.schedules.pause(name, 'test');

      const fired = await events(name, 'fired');
      const missed = await events(name, 'missed');
      // Every second from the first firing to the last is either fired once or recorded as missed.
      const secs = new Set(secondsOf(fired));
      expect(secs.size).toBe(fired.length);
      for (const m of missed) {
        const first = m.fire_at!.getTime() / 1000;
        const last = new Date(m.detail!.last).getTime() / 1000;
        expect(last - first + 1).toBe(m.detail!.count);
        for (let s = first; s <= last; s++) expect(secs.has(s)).toBe(false);
        for (let s = first; s <= last; s++) secs.add(s);
      }
      const all = [...secs].sort((x, y) => x - y);
      all.forEach((s, i) => i > 0 && expect(s - all[i - 1]!).toBe(1));
      // Caught up: fired late, under the policy (the audit row says so).
      const late = fired.filter((f) => f.detail?.caught_up === true);
      const missedCount = missed.reduce((n, m) => n + Number(m.detail!.count), 0);
      if (policy === 'none') {
        expect(missedCount).toBeGreaterThanOrEqual(2);
        expect(late).toEqual([]);
      } else if (policy === 'last') {
        expect(missedCount).toBeGreaterThanOrEqual(1);
        expect(late.length).toBe(missed.length);
        // Each run of missed firings is followed by the one caught up: the latest late one.
        missed.forEach((m, i) => expect(late[i]!.fire_at!.getTime()).toBe(new Date(m.detail!.last).getTime() + 1000));
      } else {
        expect(missed).toEqual([]);
        expect(late.length).toBeGreaterThanOrEqual(2);
      }
      expect(await tasksOf(name)).toHaveLength(fired.length);
    },
    40_000,
  );

  it('pause stops firings; resume fires again from then on, without the paused ones', async () => {
    running = await startOrchestrators(tdb.url, 2, 1_000);
    const book = running.orchestrators[1]!.schedules;
    await book.save({ name: 'pausing', template: 't_sched/hold', cron: EVERY_SECOND, overlap: 'allow', catch_up: 'all' }, { actor: 'test' });
    await until(
      'a firing',
      () => events('pausing', 'fired'),
      (rows) => rows.length >= 1,
    );
    const paused = await book.pause('pausing', 'token:ops');
    expect(paused).toMatchObject({ paused: true, next_fire_at: null, next_firings: [] });
    const atPause = (await events('pausing', 'fired')).length;
    await sleep(2_500);
    expect(await events('pausing', 'fired')).toHaveLength(atPause);
    const resumeCalled = Date.now();
    const resumed = await book.resume('pausing', 'token:ops');
    expect(resumed.paused).toBe(false);
    await until(
      'firings after resume',
      () => events('pausing', 'fired'),
      (rows) => rows.length >= atPause + 2,
    );
    await book.pause('pausing', 'test');
    const all = await events('pausing');
    const pauseAt = all.find((e) => e.kind === 'paused')!.at.getTime();
    expect(all.find((e) => e.kind === 'resumed')!.at.getTime()).toBeGreaterThanOrEqual(pauseAt);
    expect(all.find((e) => e.kind === 'paused')!.actor).toBe('token:ops');
    const fired = all.filter((e) => e.kind === 'fired');
    // Nothing of the pause fired (no burst): each firing is before the pause or after the resume was asked for.
    for (const f of fired) expect(f.fire_at!.getTime() <= pauseAt || f.fire_at!.getTime() > resumeCalled).toBe(true);
    expect(fired.filter((f) => f.fire_at!.getTime() > resumeCalled).length).toBeGreaterThanOrEqual(2);
    expect(await events('pausing', 'missed')).toEqual([]);
  }, 30_000);

  it('overlap skip: no second task while the first runs; the skipped firings are recorded', async () => {
    running = await startOrchestrators(tdb.url, 2);
    await running.orchestrators[0]!.schedules.save({ name: 'skipper', template: 't_sched/hold', cron: EVERY_SECOND, overlap: 'skip' }, { actor: 'test' });
    await until(
      'two skipped firings',
      () => events('skipper', 'skipped'),
      (rows) => rows.length >= 2,
    );
    await running.orchestrators[0]!.schedules.pause('skipper', 'test');
    const fired = await events('skipper', 'fired');
    expect(fired).toHaveLength(1);
    expect((await tasksOf('skipper')).map((t) => t.state)).toEqual(['running']);
    for (const s of await events('skipper', 'skipped')) expect(s.detail).toEqual({ reason: 'overlap', running_task: fired[0]!.task_id });
  });

  it('overlap cancel_previous: each firing cancels the task still running from the one before', async () => {
    running = await startOrchestrators(tdb.url, 2);
    const orch = running.orchestrators[0]!;
    await orch.schedules.save({ name: 'replacer', template: 't_sched/hold', cron: EVERY_SECOND, overlap: 'cancel_previous' }, { actor: 'test' });
    await until(
      'three firings',
      () => events('replacer', 'fired'),
      (rows) => rows.length >= 3,
    );
    await orch.schedules.pause('replacer', 'test');
    const fired = await events('replacer', 'fired');
    const states = new Map((await tasksOf('replacer')).map((t) => [t.id, t.state]));
    expect(states.size).toBe(fired.length);
    fired.forEach((f, i) => {
      expect(states.get(f.task_id!)).toBe(i === fired.length - 1 ? 'running' : 'cancelled');
      if (i > 0) expect(f.detail).toEqual({ previous_task: fired[i - 1]!.task_id });
    });
    const { rows } = await tdb.db.query<{ metadata: { by: string; reason: string } }>(
      `SELECT metadata FROM weft.task_transitions WHERE task_id = $1 AND to_state = 'cancelled'`,
      [fired[0]!.task_id],
    );
    expect(rows[0]!.metadata.by).toBe('schedule:replacer');
    expect(rows[0]!.metadata.reason).toBe(`superseded by the firing of ${fired[1]!.fire_at!.toISOString()}`);
  });

  it('refuses a schedule of an unknown template, or whose context fails the input_schema, naming the field', async () => {
    running = await startOrchestrators(tdb.url, 1);
    const book = running.orchestrators[0]!.schedules;
    await expect(book.save({ name: 'x', template: 't_sched/nope', cron: '0 9 * * *' }, { actor: 'test' })).rejects.toThrow(
      expect.objectContaining({
        name: 'ValidationError',
        path: 'template',
        message: expect.stringMatching(/^template: no template t_sched\/nope is registered/),
      }),
    );
    const bad = await book
      .save({ name: 'x', template: 't_sched/hold', cron: '0 9 * * *', context: { n: 'seven' } }, { actor: 'test' })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ValidationError);
    expect((bad as ValidationError).path).toBe('context.n');
    expect((await tdb.db.query(`SELECT 1 FROM weft.schedules WHERE name = 'x'`)).rows).toEqual([]);
  });

  it('a template file’s schedules: are saved when the orchestrator registers it, pinned to its version, once', async () => {
    running = await startOrchestrators(tdb.url, 1);
    const orch = running.orchestrators[0]!;
    const v = (version: string) =>
      parseTemplate(
        `namespace: t_sched\nname: declared\nversion: ${version}\nsteps:\n  - { name: only, handler: test.hold }\n` +
          'schedules:\n  - { name: declared-nightly, cron: "0 2 * * *", timezone: Europe/Berlin, context: { n: 1 } }',
        'declared.yaml',
      );
    await orch.registerTemplates([v('1.0.0')]);
    await orch.registerTemplates([v('1.0.0')]);
    expect(await orch.schedules.get('declared-nightly')).toMatchObject({
      source: 'template',
      namespace: 't_sched',
      template: 'declared',
      version: '1.0.0',
      paused: false,
    });
    await orch.schedules.pause('declared-nightly', 'test');
    await orch.registerTemplates([v('1.1.0')]);
    // The new version takes the schedule over; a pause an operator made stays.
    expect(await orch.schedules.get('declared-nightly')).toMatchObject({ version: '1.1.0', paused: true, next_fire_at: null });
    expect((await events('declared-nightly')).map((e) => e.kind)).toEqual(['created', 'paused', 'updated']);
  });

  describe('/v1/schedules', () => {
    it('creates, lists, reads, pauses, resumes and deletes; errors name the field', async () => {
      running = await startOrchestrators(tdb.url, 1);
      const orch = running.orchestrators[0]!;
      const db = await openDatabase({ url: tdb.url, log, max: 2 });
      const api = buildApi({ orchestrator: orch, db, bus: new PgMessageBus(db, log), log, ui: false, auth: { cacheMs: 0 } });
      try {
        const post = (url: string, payload?: object) => api.inject({ method: 'POST', url, payload: payload ?? {} });
        const body = { name: 'nightly', template: 't_sched/hold@1.0.0', cron: '0 9 * * MON-FRI', timezone: 'Europe/Berlin', context: { n: 1 } };

        for (const [change, path, message] of [
          [{ cron: '0 25 * * *' }, 'cron', /^cron "0 25 \* \* \*" is not a cron expression/],
          [{ timezone: 'Mars/Olympus_Mons' }, 'timezone', /^timezone "Mars\/Olympus_Mons" is not a time zone/],
          [{ template: 't_sched/missing' }, 'template', /^template: no template t_sched\/missing is registered; namespace t_sched has: .*hold@1.0.0/],
          [{ template: 't_sched/hold@9.9.9' }, 'template', /no template t_sched\/hold@9.9.9 is registered/],
          [{ overlap: 'queue' }, 'overlap', /overlap must be equal to one of the allowed values/],
          [{ cron: undefined }, 'cron', /cron must have required property 'cron'/],
          [{ context: { n: 'x' } }, 'context.n', /context.n/],
        ] as const) {
          const res = await post('/v1/schedules', { ...body, ...change });
          expect(res.statusCode, JSON.stringify(change)).toBe(400);
          expect(res.json().error.path).toBe(path);
          expect(res.json().error.message).toMatch(message);
        }

        const created = await post('/v1/schedules', body);
        expect(created.statusCode).toBe(201);
        expect(created.headers.location).toBe('/v1/schedules/nightly');
        const s = created.json();
        expect(s).toMatchObject({
          name: 'nightly',
          namespace: 't_sched',
          template: 'hold',
          version: '1.0.0',
          overlap: 'skip',
          catch_up: 'last',
          paused: false,
        });
        expect(s.next_firings).toHaveLength(5);
        // 09:00 in Berlin is 07:00 or 08:00 UTC, on a weekday.
        for (const t of s.next_firings as string[]) {
          const d = new Date(t);
          expect([7, 8]).toContain(d.getUTCHours());
          expect([1, 2, 3, 4, 5]).toContain(d.getUTCDay());
        }
        expect(s.next_fire_at).toBe(s.next_firings[0]);

        const again = await post('/v1/schedules', body);
        expect(again.statusCode).toBe(409);
        expect(again.json().error.message).toMatch(/a schedule named "nightly" already exists/);

        const list = await api.inject({ method: 'GET', url: '/v1/schedules' });
        expect(list.json().schedules.map((x: { name: string }) => x.name)).toContain('nightly');

        expect((await post('/v1/schedules/nightly/pause')).json()).toMatchObject({ paused: true, next_fire_at: null });
        expect((await post('/v1/schedules/nightly/resume')).json()).toMatchObject({ paused: false, next_fire_at: s.next_fire_at });
        const one = (await api.inject({ method: 'GET', url: '/v1/schedules/nightly' })).json();
        expect(one.events.map((e: { kind: string }) => e.kind)).toEqual(['resumed', 'paused', 'created']);
        expect(one.events[0].actor).toBe('anonymous');

        expect((await api.inject({ method: 'DELETE', url: '/v1/schedules/nightly' })).json()).toEqual({ name: 'nightly', deleted: true });
        const gone = await api.inject({ method: 'GET', url: '/v1/schedules/nightly' });
        expect(gone.statusCode).toBe(404);
        expect(gone.json().error.message).toBe('no schedule "nightly"; GET /v1/schedules (or weft schedules list) lists them');
        expect((await post('/v1/schedules/nightly/pause')).statusCode).toBe(404);
        // The audit rows outlive the schedule.
        expect((await events('nightly')).map((e) => e.kind)).toEqual(['created', 'paused', 'resumed', 'deleted']);

        // Scopes as for tasks: reading needs read, changing needs write.
        const reader = await createToken(db, 'sched-reader', ['read']);
        const writer = await createToken(db, 'sched-writer', ['write']);
        const as = (token: string, method: 'GET' | 'POST', url: string, payload?: object) =>
          api.inject({ method, url, payload, headers: { authorization: `Bearer ${token}` } });
        expect((await as(reader.token, 'GET', '/v1/schedules')).statusCode).toBe(200);
        const refused = await as(reader.token, 'POST', '/v1/schedules', body);
        expect(refused.statusCode).toBe(403);
        expect(refused.json().error.message).toBe('token "sched-reader" has scope read; POST /v1/schedules needs write');
        const byWriter = await as(writer.token, 'POST', '/v1/schedules', body);
        expect(byWriter.statusCode).toBe(201);
        expect((await events('nightly')).at(-1)).toMatchObject({ kind: 'created', actor: 'token:sched-writer' });
      } finally {
        await api.close();
        await db.close();
      }
    });
  });
});
