import type { Logger } from '../shared/logger.js';
import type { WeftConfig } from '../shared/config.js';
import { describeDatabase, openDatabase, type Database, type DatabaseLocation } from '../store/database.js';
import { redactUrl } from '../shared/redact.js';
import { acquireEmbeddedPostgres } from './embedded-postgres.js';
import { migrate } from '../store/migrate.js';

export interface Store {
  db: Database;
  /** 'url' when WEFT_DATABASE_URL was given, 'embedded' for weft's private PostgreSQL. */
  source: 'url' | 'embedded';
  /** Where it is (host, port, database, user; never the password): logged at start and shown by /health. */
  location: DatabaseLocation;
  /** Close the pool and, for the embedded server, let go of it (it stops when no weft process uses it). */
  close(): Promise<void>;
}

/**
 * The database every weft process starts with: WEFT_DATABASE_URL, or the
 * embedded PostgreSQL under WEFT_HOME when it is unset; migrated to the
 * current schema (under an advisory lock, so concurrent starts are safe).
 */
export async function connectStore(
  config: Pick<WeftConfig, 'databaseUrl' | 'home' | 'embeddedPgPort' | 'pool'>,
  log: Logger,
  options: { migrate?: boolean; applicationName?: string } = {},
): Promise<Store> {
  let url = config.databaseUrl;
  let release: (() => Promise<void>) | undefined;
  if (!url) {
    const embedded = await acquireEmbeddedPostgres({ home: config.home, port: config.embeddedPgPort, log: (m) => log.info(m) });
    url = embedded.localUrl;
    release = () => embedded.release();
    log.info(
      { port: embedded.port, data: embedded.dataDir, reused: !embedded.startedByUs },
      'using the embedded PostgreSQL (set WEFT_DATABASE_URL to use another)',
    );
  }
  let db: Database;
  try {
    db = await openDatabase({
      url,
      max: config.pool.max,
      slowAcquireThresholdMs: config.pool.slowAcquireThresholdMs,
      connectTimeoutMs: config.pool.connectTimeoutMs,
      queryTimeoutMs: config.pool.queryTimeoutMs,
      log,
      applicationName: options.applicationName,
    });
    if (options.migrate !== false) await migrate(db, log);
    await db.warm(4);
  } catch (err) {
    await release?.();
    throw err;
  }
  const location = describeDatabase(url);
  log.info(
    { database: location, source: release ? 'embedded' : 'WEFT_DATABASE_URL' },
    `using PostgreSQL ${location.database} on ${location.host}:${location.port}`,
  );
  log.debug({ url: redactUrl(url) }, 'database ready');
  return {
    db,
    location,
    source: release ? 'embedded' : 'url',
    async close() {
      await db.close().catch(() => undefined);
      await release?.();
    },
  };
}
