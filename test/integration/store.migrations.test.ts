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
import { migrate, readMigrations } from '../../src/store/migrate.js';
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
});
afterAll(async () => {
  for (const db of pools.splice(0)) await db.close().catch(() => undefined);
  await admin(async (c) => {
    for (const name of created) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
});

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

    const second = await migrate(db, log);
    expect(second).toEqual({ applied: [], current: first.current });
    expect(await appliedRows(db)).toHaveLength(migrations.length);
    expect(lines.filter((l) => l.level >= WARN)).toEqual([]);
  });

  it('two migrate() calls racing from two pools on a fresh database both succeed and apply each migration exactly once (3 rounds)', async () => {
    const migrations = await readMigrations();
    for (let round = 0; round < 3; round++) {
      const name = await freshDatabase();
      const [a, b] = [await pool(name), await pool(name)];
      const [ra, rb] = await Promise.all([migrate(a, silentLogger()), migrate(b, silentLogger())]);
      // One of them did the work, the other found it done.
      expect([...ra.applied, ...rb.applied].sort(), `round ${round}`).toEqual(migrations.map((m) => m.name).sort());
      expect([ra.applied.length, rb.applied.length].sort()).toEqual([0, migrations.length]);
      expect(ra.current).toBe(rb.current);
      expect(await appliedRows(a)).toEqual(migrations.map((m) => ({ version: m.version, name: m.name, checksum: m.checksum })));
      // The seed rows of 001, 002 and 004 were inserted once (a second run would have failed on their primary key, but count anyway).
      const { rows } = await a.query(
        'SELECT (SELECT count(*) FROM weft.step_transition_rules)::int AS s, (SELECT count(*) FROM weft.task_transition_rules)::int AS t',
      );
      expect(rows[0]).toEqual({ s: 26, t: 9 });
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

  it('warns when the database has a migration this weft does not know (a newer schema)', async () => {
    const db = await pool(await freshDatabase());
    await migrate(db, silentLogger());
    await db.query(`INSERT INTO weft.schema_migrations (version, name, checksum) VALUES (999, '999_from_the_future', 'x')`);
    const { log, lines } = capturingLogger();
    const result = await migrate(db, log);
    expect(result).toEqual({ applied: [], current: 999 });
    const warnings = lines.filter((l) => l.level === WARN);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      migrations: ['999_from_the_future'],
      msg: 'the database has migrations this weft does not know; is an older weft running against a newer schema?',
    });
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
        'schema_migrations',
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
    // The units of work of the step boundary (migration 002) and of cancel and retry (004), the transition rules they are checked
    // against, the error history's helpers (005) and bulk submission (009); NOTIFY is sent after commit (weft.wake), never by a trigger.
    expect(functions.map((f) => f.name).sort()).toEqual([
      'append_error',
      'cancel_task',
      'claim_ids',
      'claim_queued',
      'claimed_events',
      'compile_transition_rules',
      'create_task',
      'create_tasks',
      'delete_expired_tasks',
      'dispatch_due_retries',
      'fail_task',
      'finish_steps',
      'insert_steps',
      'legal_step_transition',
      'legal_task_transition',
      'lock_queues',
      'loss_entry',
      'loss_label',
      'loss_summary',
      'record_process_exit',
      'redispatch_stale',
      'register_waiter',
      'release_steps',
      'requeue_lost_steps',
      'retry_task',
      'running_steps_of',
      'wake',
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
