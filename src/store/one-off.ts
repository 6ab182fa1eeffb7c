/**
 * A single connection for one piece of work outside any pool: server
 * administration (CREATE DATABASE), a version check, a benchmark's probe.
 * The connection is closed whatever happens, and an error event of a server
 * that shuts down meanwhile never crashes the process (it surfaces through the
 * query instead).
 */
import pg from 'pg';

/** What the work may do with the connection. */
export interface OneOffConnection {
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

/**
 * @example
 *   const version = await withConnection(url, async (c) => (await c.query('SHOW server_version')).rows[0]);
 */
export async function withConnection<T>(url: string, work: (c: OneOffConnection) => Promise<T>, options: { connectTimeoutMs?: number } = {}): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return await work(client as unknown as OneOffConnection);
  } finally {
    await client.end().catch(() => undefined);
  }
}
