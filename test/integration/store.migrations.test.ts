/**
 * Migrations (issue 2, "Storage"): applied once, safe when several processes start together (advisory
 * lock), an edited migration stops the process with instructions, and everything lives in schema `weft`.
 *
 * The racing tests need a database no migration has touched, so they create their own with CREATE
 * DATABASE (not from the migrated template) and drop it afterwards.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/store/database.js';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, readMigrations } from '../../src/store/migrate.js';
import { readFunctionFiles } from '../../src/store/function-files.js';
import { packageRoot } from '../../src/shared/paths.js';
import { silentLogger } from '../../src/shared/logger.js';
import { capturingLogger } from '../support/log.js';
import { DatabaseError } from '../../src/shared/errors.js';
import { adminUrl, databaseUrl, runId } from '../support/urls.js';

const WARN = 40;

const created: string[] = [];
const pools: Database[] = [];

async function admin<T>(work: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(adminUrl());
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}

/** An empty database: no schema, no migrations (the global-setup prefix, so a crashed run is cleaned up too). */
async function freshDatabase(): Promise<string> {
  const name = `weft_t_${runId()}_mig_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  created.push(name);
  return name;
}

async function pool(name: string, log: Logger = silentLogger()): Promise<Database> {
  const db = await openDatabase({ url: databaseUrl(name), log, max: 4 });
  pools.push(db);
  return db;
}

afterEach(async () => {
  for (const db of pools.splice(0)) await db.close().catch(() => undefined);
  for (const dir of copies.splice(0)) rmSync(dir, { recursive: true, force: true });
});
afterAll(async () => {
  for (const db of pools.splice(0)) await db.close().catch(() => undefined);
  await admin(async (c) => {
    for (const name of created) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
});

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

async function recordedFunctions(db: Database) {
  const { rows } = await db.query<{ name: string; checksum: string }>('SELECT name, checksum FROM weft.function_files ORDER BY name');
  return rows;
}

/** The text PostgreSQL holds for weft.<name> (all overloads). */
async function definition(db: Database, name: string): Promise<string> {
  const { rows } = await db.query<{ def: string }>(
    `SELECT string_agg(pg_get_functiondef(p.oid), E'\n') AS def FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'weft' AND p.proname = $1`,
    [name],
  );
  return rows[0]!.def;
}

/** What a weft from before sql/functions did: the numbered migrations only, with their bookkeeping rows. */
async function migrateLikeTheOldCode(db: Database): Promise<void> {
  await db.query(`CREATE SCHEMA weft; CREATE TABLE weft.schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
  for (const m of await readMigrations()) {
    await db.query(m.sql);
    await db.query('INSERT INTO weft.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
  }
}

/** A copy of sql/functions to change in a test; removed after it. */
function functionsCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-functions-'));
  copies.push(dir);
  cpSync(join(packageRoot(), 'sql', 'functions'), dir, { recursive: true });
  return dir;
}
const copies: string[] = [];

async function appliedRows(db: Database) {
  const { rows } = await db.query<{ version: number; name: string; checksum: string }>(
    'SELECT version, name, checksum FROM weft.schema_migrations ORDER BY version',
  );
  return rows;
}

describe('migrate', () => {
  it('applies every migration once on an empty database, and a second run applies nothing', async () => {
    const migrations = await readMigrations();
    expect(migrations.map((m) => m.name)).toContain('001_initial');
    const db = await pool(await freshDatabase());
    const { log, lines } = capturingLogger();

    const first = await migrate(db, log);
    expect(first.applied).toEqual(migrations.map((m) => m.name));
    expect(first.current).toBe(Math.max(...migrations.map((m) => m.version)));
    expect(lines.filter((l) => l.msg === 'applied migration').map((l) => l.migration)).toEqual(migrations.map((m) => m.name));
    expect(await appliedRows(db)).toEqual(migrations.map((m) => ({ version: m.version, name: m.name, checksum: m.checksum })));

    const files = await readFunctionFiles();
    expect(first.functions).toEqual(files.map((f) => f.name));
    expect(lines.filter((l) => l.msg === 'applied function files').map((l) => l.functions)).toEqual([files.map((f) => f.name)]);
    expect(await recordedFunctions(db)).toEqual(files.map((f) => ({ name: f.name, checksum: f.checksum })).sort(byName));

    const second = await migrate(db, log);
    expect(second).toEqual({ applied: [], functions: [], current: first.current });
    expect(await appliedRows(db)).toHaveLength(migrations.length);
    expect(lines.filter((l) => l.level >= WARN)).toEqual([]);
  });

  it('the idempotency-key index is unique over the tasks that have a key only (010): a task without one writes no entry', async () => {
    const db = await pool(await freshDatabase());
    await migrate(db, silentLogger());
    const { rows } = await db.query<{ indexdef: string }>(
      `SELECT indexdef FROM pg_indexes WHERE schemaname = 'weft' AND tablename = 'tasks' AND indexdef LIKE '%(idempotency_key)%'`,
    );
    expect(rows.map((r) => r.indexdef)).toEqual([
      'CREATE UNIQUE INDEX tasks_idempotency_key_key ON weft.tasks USING btree (idempotency_key) WHERE (idempotency_key IS NOT NULL)',
    ]);
    // Two tasks without a key, then two with the same key: the second is refused by that index, by its name.
    const insert = (key: string | null) =>
      db.query(
        `INSERT INTO weft.tasks (id, namespace, name, version, state, context, idempotency_key) VALUES (gen_random_uuid(), 'n', 't', '1', 'pending', '{}', $1)`,
        [key],
      );
    await insert(null);
    await insert(null);
    await insert('k');
    await expect(insert('k')).rejects.toMatchObject({ code: '23505', constraint: 'tasks_idempotency_key_key' });
  });

  it('two migrate() calls racing from two pools on a fresh database both succeed and apply each migration exactly once (3 rounds)', async () => {
    const migrations = await readMigrations();
    const files = await readFunctionFiles();
    for (let round = 0; round < 3; round++) {
      const name = await freshDatabase();
      const [a, b] = [await pool(name), await pool(name)];
      const [ra, rb] = await Promise.all([migrate(a, silentLogger()), migrate(b, silentLogger())]);
      // One of them did the work, the other found it done.
      expect([...ra.applied, ...rb.applied].sort(), `round ${round}`).toEqual(migrations.map((m) => m.name).sort());
      expect([ra.applied.length, rb.applied.length].sort()).toEqual([0, migrations.length]);
      // ... and the function files too, by the same one.
      expect((ra.applied.length ? ra : rb).functions).toEqual(files.map((f) => f.name));
      expect((ra.applied.length ? rb : ra).functions).toEqual([]);
      expect(ra.current).toBe(rb.current);
      expect(await appliedRows(a)).toEqual(migrations.map((m) => ({ version: m.version, name: m.name, checksum: m.checksum })));
      // The seed rows of 001, 002, 004 and 010 were inserted once (a second run would have failed on their primary key, but count anyway).
      const { rows } = await a.query(
        'SELECT (SELECT count(*) FROM weft.step_transition_rules)::int AS s, (SELECT count(*) FROM weft.task_transition_rules)::int AS t',
      );
      expect(rows[0]).toEqual({ s: 31, t: 9 });
    }
  });

  it('four processes starting together (four pools) still apply each migration exactly once', async () => {
    const migrations = await readMigrations();
    const name = await freshDatabase();
    const dbs = await Promise.all([1, 2, 3, 4].map(() => pool(name)));
    const results = await Promise.all(dbs.map((db) => migrate(db, silentLogger())));
    expect(results.flatMap((r) => r.applied)).toEqual(migrations.map((m) => m.name));
    expect(await appliedRows(dbs[0]!)).toHaveLength(migrations.length);
  });

  it('refuses to start when an applied migration was changed afterwards (checksum differs), naming it and how to recover', async () => {
    const db = await pool(await freshDatabase());
    await migrate(db, silentLogger());
    await db.query(`UPDATE weft.schema_migrations SET checksum = 'deadbeefdeadbeef' WHERE name = '001_initial'`);
    const failure = await migrate(db, silentLogger()).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(DatabaseError);
    const message = (failure as Error).message;
    expect(message).toContain('applied migration 001_initial with different content');
    expect(message).toContain('remove WEFT_HOME/pg');
    expect(message).not.toMatch(/password/i);
    // Nothing was changed: the stored checksum stays, so the refusal repeats until someone acts.
    const rows = await appliedRows(db);
    expect(rows.find((r) => r.name === '001_initial')!.checksum).toBe('deadbeefdeadbeef');
  });

  it('a database migrated before function files existed (migrations only) gets every function file, and no migration again', async () => {
    const db = await pool(await freshDatabase());
    await migrateLikeTheOldCode(db);
    const files = await readFunctionFiles();
    const result = await migrate(db, silentLogger());
    expect(result.applied).toEqual([]);
    expect(result.functions).toEqual(files.map((f) => f.name));
    expect(await recordedFunctions(db)).toEqual(files.map((f) => ({ name: f.name, checksum: f.checksum })).sort(byName));
    // The helpers the files added exist now, and the step boundary's functions are the files' text.
    for (const f of files) expect(await definition(db, f.name), f.name).not.toBe(null);
    expect((await migrate(db, silentLogger())).functions).toEqual([]);
  });

  it('re-applies a function file whose text changed since the database recorded it, and only that one', async () => {
    const db = await pool(await freshDatabase());
    await migrate(db, silentLogger());
    const current = await definition(db, 'running_steps_of');
    // What an older text of the function looks like in the catalogue, recorded under the older checksum.
    await db.query(`CREATE OR REPLACE FUNCTION weft.running_steps_of(p_worker text, p_older_ms integer)
      RETURNS TABLE (id uuid, attempt integer) LANGUAGE sql AS $fn$ SELECT NULL::uuid, 0 $fn$`);
    await db.query(`UPDATE weft.function_files SET checksum = 'older' WHERE name = 'running_steps_of'`);
    const { log, lines } = capturingLogger();
    const result = await migrate(db, log);
    expect(result).toMatchObject({ applied: [], functions: ['running_steps_of'] });
    expect(await definition(db, 'running_steps_of')).toBe(current);
    expect(lines.filter((l) => l.msg === 'applied function files').map((l) => l.functions)).toEqual([['running_steps_of']]);
  });

  it('a function file that fails rolls back every file of that run, names the file, and says how to order a helper', async () => {
    const db = await pool(await freshDatabase());
    await migrate(db, silentLogger());
    const dir = functionsCopy();
    // A changed file that applies (first in order) and a new one that calls a helper no file defines.
    writeFileSync(join(dir, 'append_error.sql'), `-- changed\n${(await readFunctionFiles()).find((f) => f.name === 'append_error')!.sql}`);
    writeFileSync(
      join(dir, 'zz_broken.sql'),
      'CREATE OR REPLACE FUNCTION weft.zz_broken() RETURNS int LANGUAGE sql STABLE AS $fn$ SELECT weft.no_such_helper() $fn$;\n',
    );
    const before = await recordedFunctions(db);
    const err = await migrate(db, silentLogger(), { functions: dir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DatabaseError);
    expect((err as Error).message).toBe(
      'function file sql/functions/zz_broken.sql failed: function weft.no_such_helper() does not exist ' +
        '(a function it calls from a LANGUAGE sql body must be created first: name its file in a "-- requires:" line)',
    );
    expect(await recordedFunctions(db)).toEqual(before);
    expect(await definition(db, 'zz_broken')).toBe(null);
    // The lock was let go: the next run (weft's own files) finds nothing to do.
    expect((await migrate(db, silentLogger())).functions).toEqual([]);
  });

  it('warns when the database has a migration this weft does not know (a newer schema)', async () => {
    const db = await pool(await freshDatabase());
    await migrate(db, silentLogger());
    await db.query(`INSERT INTO weft.schema_migrations (version, name, checksum) VALUES (999, '999_from_the_future', 'x')`);
    const { log, lines } = capturingLogger();
    // Its function files are older than what that schema may need: it leaves the newer weft's in place.
    await db.query(`UPDATE weft.function_files SET checksum = 'from-the-future' WHERE name = 'wake'`);
    const result = await migrate(db, log);
    expect(result).toEqual({ applied: [], functions: [], current: 999 });
    const warnings = lines.filter((l) => l.level === WARN);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      migrations: ['999_from_the_future'],
      msg: 'the database has migrations this weft does not know; is an older weft running against a newer schema? Its functions are left as they are',
    });
    expect((await recordedFunctions(db)).find((r) => r.name === 'wake')!.checksum).toBe('from-the-future');
  });

  it('a migration that fails is a DatabaseError naming it; its transaction rolls back and the lock is released', async () => {
    const db = await pool(await freshDatabase());
    // Something in the way: 001 creates this table without IF NOT EXISTS.
    await db.query('CREATE SCHEMA weft; CREATE TABLE weft.task_transition_rules (x int)');
    const err = await migrate(db, silentLogger()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DatabaseError);
    expect((err as DatabaseError).name).toBe('DatabaseError');
    expect((err as DatabaseError).code).toBe('database_unavailable');
    expect((err as DatabaseError).message).toBe('migration 001_initial failed: relation "task_transition_rules" already exists');
    expect(await appliedRows(db)).toEqual([]);
    const { rows } = await db.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'weft' AND c.relkind = 'r' ORDER BY 1`,
    );
    expect(rows.map((r) => r.name)).toEqual(['schema_migrations', 'task_transition_rules']);

    // The advisory lock was let go: another pool migrates at once after the obstacle is removed.
    await db.query('DROP TABLE weft.task_transition_rules');
    const second = await pool(created[created.length - 1]!);
    expect((await migrate(second, silentLogger())).applied).toEqual((await readMigrations()).map((m) => m.name));
  });

  it('puts everything (tables, indexes, sequences) in schema weft, nothing in public, and defines no triggers', async () => {
    const db = await pool(await freshDatabase());
    const { rows: before } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`,
    );
    expect(before[0]!.n).toBe(0);
    await migrate(db, silentLogger());

    const { rows: relations } = await db.query<{ schema: string; name: string; kind: string }>(
      `SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2`,
    );
    expect(relations.length).toBeGreaterThan(0);
    expect(relations.filter((r) => r.schema !== 'weft')).toEqual([]);
    const tables = relations.filter((r) => r.kind === 'r').map((r) => r.name);
    expect(tables.sort()).toEqual(
      [
        'api_tokens',
        'outbox',
        'processes',
        'queue_waiters',
        'schedule_events',
        'schedules',
        'schema_migrations',
        'function_files',
        'step_edges',
        'step_transition_rules',
        'step_transitions',
        'steps',
        'task_transition_rules',
        'task_transitions',
        'task_watchers',
        'tasks',
        'templates',
      ].sort(),
    );

    const { rows: functions } = await db.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, p.proname AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`,
    );
    // The units of work of the step boundary, of bulk submission and of cancel and retry (sql/functions), their shared helpers
    // (event rows, the attempt fence, claim, dispatch), the transition rules they are checked against, and the error history's
    // helpers, steps that wait (migration 007: sleeps, waits, signals, delayed starts) and child workflows (009); NOTIFY is
    // sent after commit (weft.wake), never by a trigger.
    expect(functions.map((f) => f.name).sort()).toEqual([
      'append_error',
      'cancel_children',
      'cancel_task',
      'child_results',
      'claim_ids',
      'claim_queued',
      'claim_steps',
      'claimed_events',
      'compile_transition_rules',
      'complete_waiting',
      'create_task',
      'create_task_claiming',
      'create_tasks',
      'delete_expired_tasks',
      'dispatch_due_retries',
      'dispatch_ready',
      'enqueued_event',
      'event_row',
      'fail_task',
      'fail_workflow_step',
      'finish_steps',
      'finish_workflow_steps',
      'finished_event',
      'holds_attempt',
      'insert_steps',
      'legal_step_transition',
      'legal_task_transition',
      'link_child',
      'lock_queues',
      'loss_entry',
      'loss_label',
      'loss_summary',
      'outbox_event',
      'pick_queued',
      'record_process_exit',
      'redispatch_stale',
      'register_waiter',
      'release_steps',
      'requeue_lost_steps',
      'retry_task',
      'rfc3339_time',
      'running_steps_of',
      'signal_step',
      'start_due_tasks',
      'task_ended_event',
      'task_history',
      'task_state',
      'task_view',
      'wait_deadline',
      'wait_until_value',
      'waiting_event',
      'wake',
      'wake_waiting',
    ]);
    expect(functions.every((f) => f.schema === 'weft')).toBe(true);

    const { rows: triggers } = await db.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, t.tgname AS name FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal`,
    );
    expect(triggers).toEqual([]);

    const { rows: types } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public'`,
    );
    expect(types[0]!.n).toBe(0);
  });
});
