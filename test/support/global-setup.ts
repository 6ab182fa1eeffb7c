import pg from 'pg';
import { createLogger } from '../../src/shared/logger.js';
import { openDatabase } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrate.js';
import { adminUrl, databaseUrl, templateDb } from './urls.js';

/**
 * Once per `npm test`: build a migrated template database that every
 * integration test file clones (CREATE DATABASE ... TEMPLATE), so each file
 * gets its own empty, current schema in ~100 ms.
 */
export default async function setup(): Promise<() => Promise<void>> {
  process.env.WEFT_TEST_RUN ??= `${process.pid}`;
  const TEMPLATE_DB = templateDb();
  const prefix = `weft_t_${process.env.WEFT_TEST_RUN}_`;
  const admin = new pg.Client(adminUrl());
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DB} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  const db = await openDatabase({ url: databaseUrl(TEMPLATE_DB), log: createLogger({ level: 'warn' }) });
  await migrate(db, createLogger({ level: 'warn' }));
  await db.close();
  return async () => {
    const c = new pg.Client(adminUrl());
    await c.connect();
    // Drop what test files left behind (they drop their own; this catches crashes).
    const { rows } = await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE starts_with(datname, $2) OR datname = $1`, [
      TEMPLATE_DB,
      prefix,
    ]);
    for (const r of rows) await c.query(`DROP DATABASE IF EXISTS ${r.datname} WITH (FORCE)`).catch(() => undefined);
    await c.end();
  };
}
