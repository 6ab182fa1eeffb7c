import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database } from './database.js';
import { redactUrl } from '../shared/redact.js';
import type { Logger } from '../shared/logger.js';
import { DatabaseError } from '../shared/errors.js';
import { packageRoot } from '../shared/paths.js';

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
  applied: string[];
  current: number;
}

/**
 * Bring the schema up to date. Safe to call from every process at start:
 * an advisory lock makes concurrent callers wait for each other, and each
 * migration runs in its own transaction with its bookkeeping row.
 */
export async function migrate(db: Database, log: Logger): Promise<MigrateResult> {
  const migrations = await readMigrations();
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
    if (newer.length) {
      log.warn(
        { migrations: newer.map((r) => r.name) },
        'the database has migrations this weft does not know; is an older weft running against a newer schema?',
      );
    }
    const current = Math.max(0, ...migrations.map((m) => m.version), ...rows.map((r) => r.version));
    return { applied, current };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    client.release();
  }
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
