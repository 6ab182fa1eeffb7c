import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/store/database.js';
import { silentLogger } from '../../src/shared/logger.js';
import { adminUrl, databaseUrl, runId, templateDb } from './urls.js';

export interface TestDatabase {
  name: string;
  url: string;
  db: Database;
  /** Close the pool and drop the database. */
  drop(): Promise<void>;
}

/**
 * A fresh database for one test file, cloned from the migrated template
 * (see global-setup.ts). Call `drop()` in afterAll.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `weft_t_${runId()}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client(adminUrl());
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${templateDb()}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(name);
  const db = await openDatabase({ url, log: silentLogger(), max: 20 });
  return {
    name,
    url,
    db,
    async drop() {
      await db.close().catch(() => undefined);
      const c = new pg.Client(adminUrl());
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
