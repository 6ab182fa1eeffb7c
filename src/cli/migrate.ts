import type { WeftConfig } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { connectStore } from '../ops/connect-store.js';
import { migrate } from '../store/migrate.js';
import { redactUrl } from '../shared/redact.js';

/** `weft migrate`: apply pending migrations and say what happened. */
export async function runMigrate(config: WeftConfig, log: Logger, json = false): Promise<number> {
  const store = await connectStore(config, log, { migrate: false });
  try {
    const result = await migrate(store.db, log);
    const where = store.source === 'embedded' ? `embedded PostgreSQL (${config.home}/pg)` : redactUrl(store.db.url);
    if (json) {
      process.stdout.write(`${JSON.stringify({ applied: result.applied, current: result.current, where })}\n`);
      return 0;
    }
    process.stdout.write(
      result.applied.length
        ? `applied ${result.applied.join(', ')} to ${where}; schema is at version ${result.current}\n`
        : `${where} is up to date (schema version ${result.current})\n`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
