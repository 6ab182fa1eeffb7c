import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import type { Database } from './database.js';
import { redactUrl } from '../shared/redact.js';
import type { Logger } from '../shared/logger.js';
import { DatabaseError } from '../shared/errors.js';
import { packageRoot } from '../shared/paths.js';
import { readFunctionFiles, type FunctionFile } from './function-files.js';

/** Any constant works; it only has to be the same in every weft process. */
const MIGRATION_LOCK_KEY = 0x77656674; // "weft"

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export async function readMigrations(dir = join(packageRoot(), 'migrations')): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_[a-z0-9_]+\.sql$/.test(f)).sort();
  const out: Migration[] = [];
  for (const file of files) {
    const sql = await readFile(join(dir, file), 'utf8');
    out.push({
      version: Number(file.split('_')[0]),
      name: file.replace(/\.sql$/, ''),
      sql,
      checksum: createHash('sha256').update(sql).digest('hex').slice(0, 16),
    });
  }
  return out;
}

export interface MigrateResult {
  /** Numbered migrations applied by this call, in order. */
  applied: string[];
  /** Function files (sql/functions) applied by this call, in order: new, or changed since the database recorded them. */
  functions: string[];
  current: number;
}

/** Where the SQL comes from: weft's own migrations/ and sql/functions/ unless a test says otherwise. */
interface MigrationSources {
  migrations?: string;
  functions?: string;
}

/**
 * Bring the schema up to date. Safe to call from every process at start:
 * an advisory lock makes concurrent callers wait for each other, and each
 * migration runs in its own transaction with its bookkeeping row. Then,
 * under the same lock and in one transaction, every function file whose
 * text differs from the one the database recorded (sql/README.md).
 */
export async function migrate(db: Database, log: Logger, sources: MigrationSources = {}): Promise<MigrateResult> {
  const migrations = await readMigrations(sources.migrations);
  const functionFiles = await readFunctionFiles(sources.functions);
  const client = await db.acquire();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS weft`);
    await client.query(`CREATE TABLE IF NOT EXISTS weft.schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
    const { rows } = await client.query<{ version: number; name: string; checksum: string }>(
      'SELECT version, name, checksum FROM weft.schema_migrations ORDER BY version',
    );
    const done = new Map(rows.map((r) => [r.version, r]));
    const edited = migrations.filter((m) => done.has(m.version) && done.get(m.version)!.checksum !== m.checksum);
    if (edited.length > 0)
      throw editedMigrationsError(
        edited.map((m) => m.name),
        redactUrl(db.url),
      );
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      try {
        await client.query('BEGIN');
        await client.query(m.sql);
        await client.query('INSERT INTO weft.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new DatabaseError(`migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(m.name);
      log.info({ migration: m.name }, 'applied migration');
    }
    const newer = rows.filter((r) => !migrations.some((m) => m.version === r.version));
    // An older weft must not put its older function texts over the ones a newer schema needs.
    if (newer.length) {
      log.warn(
        { migrations: newer.map((r) => r.name) },
        'the database has migrations this weft does not know; is an older weft running against a newer schema? Its functions are left as they are',
      );
    }
    const functions = newer.length ? [] : await applyFunctionFiles(client, functionFiles, log);
    const current = Math.max(0, ...migrations.map((m) => m.version), ...rows.map((r) => r.version));
    return { applied, functions, current };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    client.release();
  }
}

/**
 * Apply, in their order and in one transaction, the function files whose
 * checksum differs from the one recorded in weft.function_files (all of them
 * on a database migrated before function files existed). One transaction: a
 * caller never sees half of a change that spans several functions.
 */
async function applyFunctionFiles(client: pg.PoolClient, files: FunctionFile[], log: Logger): Promise<string[]> {
  await client.query(`CREATE TABLE IF NOT EXISTS weft.function_files (
    name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
  const { rows } = await client.query<{ name: string; checksum: string }>('SELECT name, checksum FROM weft.function_files');
  const recorded = new Map(rows.map((r) => [r.name, r.checksum]));
  const changed = files.filter((f) => recorded.get(f.name) !== f.checksum);
  const gone = rows.filter((r) => !files.some((f) => f.name === r.name)).map((r) => r.name);
  if (changed.length === 0 && gone.length === 0) return [];
  let current: FunctionFile | undefined;
  try {
    await client.query('BEGIN');
    for (const f of changed) {
      current = f;
      await client.query(f.sql);
      await client.query(
        `INSERT INTO weft.function_files (name, checksum) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = clock_timestamp()`,
        [f.name, f.checksum],
      );
    }
    // A file removed from sql/functions: the migration that removed it dropped the function (sql/README.md).
    if (gone.length) await client.query('DELETE FROM weft.function_files WHERE name = ANY($1)', [gone]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new DatabaseError(
      `function file sql/functions/${current?.name}.sql failed: ${(err as Error).message}` +
        (/does not exist/.test((err as Error).message)
          ? ' (a function it calls from a LANGUAGE sql body must be created first: name its file in a "-- requires:" line)'
          : ''),
      { cause: err },
    );
  }
  if (changed.length) log.info({ functions: changed.map((f) => f.name) }, 'applied function files');
  return changed.map((f) => f.name);
}

/**
 * A migration this weft ships differs from the one the database applied. The
 * schema it describes may then lack what the code calls (a function added by
 * an edit the database never ran), so weft refuses to start rather than fail
 * later, one statement at a time.
 */
function editedMigrationsError(names: string[], location: string): DatabaseError {
  const list = names.join(', ');
  return new DatabaseError(
    `the database at ${location} applied ${names.length === 1 ? 'migration' : 'migrations'} ${list} with different content from this weft's ` +
      `(migrations/${names[0]}.sql changed after it was applied). Landed migrations are never edited, so this database was made by a ` +
      'development build of weft: recreate it (for the embedded PostgreSQL, stop every weft process and remove WEFT_HOME/pg; with ' +
      'WEFT_DATABASE_URL, drop and recreate that database), or run the weft build that created it.',
  );
}
