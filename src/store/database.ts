import pg from 'pg';
import { isUnreachable } from '../shared/retry.js';
import type { Logger } from '../shared/logger.js';
import { DatabaseError } from '../shared/errors.js';
import { redactUrl, scrubSecrets, secretsOf } from '../shared/redact.js';

/**
 * The connection pool every weft process uses, with the statistics the
 * orchestrator exports as metrics: connections in use, idle and waiting, and
 * how long acquiring one took. An acquire slower than
 * `slowAcquireThresholdMs` is logged at warn: it means the pool is too small
 * for the load or a connection is being held too long.
 */
export interface PoolStats {
  total: number;
  idle: number;
  inUse: number;
  waiting: number;
  acquires: number;
  slowAcquires: number;
  /** Sum of acquire times in ms, for a mean. */
  acquireMsTotal: number;
  maxAcquireMs: number;
}

export interface DatabaseOptions {
  url: string;
  max?: number;
  slowAcquireThresholdMs?: number;
  log: Logger;
  applicationName?: string;
  /** Opening a connection fails after this long (default 5 s). */
  connectTimeoutMs?: number;
  /** A statement fails when its answer takes longer (default 30 s); `longQuery` is exempt. */
  queryTimeoutMs?: number;
}

// Keep int8 (bigint) as strings (the default) but give jsonb/json the native
// parser; timestamps stay Date objects.
export class Database {
  readonly pool: pg.Pool;
  readonly url: string;
  private readonly log: Logger;
  private readonly slowMs: number;
  private readonly max: number;
  private lastSlowWarning = 0;
  private readonly stats = { acquires: 0, slowAcquires: 0, acquireMsTotal: 0, maxAcquireMs: 0 };
  /** Observers of each acquire time (ms), e.g. a Prometheus histogram. */
  readonly acquireObservers: Array<(ms: number) => void> = [];
  /** Run before the pool closes (e.g. the LISTEN connection of src/store/signals.ts). */
  private readonly closers: Array<() => Promise<void>> = [];

  constructor(options: DatabaseOptions) {
    this.url = options.url;
    this.log = options.log;
    this.slowMs = options.slowAcquireThresholdMs ?? 50;
    this.max = options.max ?? 10;
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: this.max,
      idleTimeoutMillis: 30_000,
      // Every wait is bounded (issue 9): a server that does not answer (frozen,
      // or a network that drops packets) fails the caller instead of hanging it.
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      query_timeout: options.queryTimeoutMs ?? 30_000,
      application_name: options.applicationName ?? 'weft',
      keepAlive: true,
      // JIT compiling weft's short statements costs more than running them
      // (on never-analysed tables the task view took 172 ms to JIT, issue 8),
      // whatever the server's default; weft's own functions also set it.
      // UTC: the task views PostgreSQL renders as JSON carry +00:00 times.
      options: '-c jit=off -c TimeZone=UTC',
    });
    // An idle client losing its connection (server restart) must not crash the process.
    this.pool.on('error', (err) => this.log.warn({ err: err.message }, 'idle database connection lost; the pool will reconnect'));
    // A connection that dies while checked out, between two queries, emits
    // 'error' on its client; without a listener that would end the process.
    // The next query on it fails, and release() discards it.
    this.pool.on('connect', (client) => {
      client.on('error', (err) => this.log.warn({ err: err.message }, 'database connection lost while in use'));
    });
  }

  /**
   * Run one statement on any pooled connection. Give hot statements a
   * `name`: each connection then parses and plans them once (a prepared
   * statement), which for weft's CTE statements saves more than the round
   * trip itself.
   */
  async query<R extends pg.QueryResultRow = any>(text: string, values?: unknown[], name?: string): Promise<pg.QueryResult<R>> {
    const client = await this.acquire();
    try {
      const result = await client.query<R>(name ? { name, text, values } : { text, values });
      client.release();
      return result;
    } catch (err) {
      // A connection that died or timed out mid-statement is not reused.
      client.release(isDisconnect(err) ? (err as Error) : undefined);
      throw err;
    }
  }

  /** A statement that may legitimately run for long (ANALYZE, VACUUM): the read timeout does not apply. */
  async queryLong(text: string): Promise<void> {
    const client = await this.acquire();
    try {
      await client.query({ text, query_timeout: NO_READ_TIMEOUT } as pg.QueryConfig);
      client.release();
    } catch (err) {
      client.release(isDisconnect(err) ? (err as Error) : undefined);
      throw err;
    }
  }

  /**
   * `query` for statements that are safe to run twice (reads, and writes that
   * are compare-and-sets): tried once more on a fresh connection when the
   * first one turns out to be dead (a server restart, an administrator's
   * pg_terminate_backend) — pooled connections learn that only when used.
   */
  async queryIdempotent<R extends pg.QueryResultRow = any>(text: string, values?: unknown[], name?: string): Promise<pg.QueryResult<R>> {
    try {
      return await this.query<R>(text, values, name);
    } catch (err) {
      if (!isDisconnect(err)) throw err;
      return this.query<R>(text, values, name);
    }
  }

  /** A connection for several statements; release it when done. */
  async acquire(): Promise<pg.PoolClient> {
    const started = performance.now();
    // Opening a new connection is not waiting for one: only an acquire that
    // had to queue behind a busy pool counts as slow.
    const queued = this.pool.idleCount === 0 && this.pool.totalCount >= this.max;
    const client = await this.pool.connect();
    const ms = performance.now() - started;
    this.stats.acquires++;
    this.stats.acquireMsTotal += ms;
    if (ms > this.stats.maxAcquireMs) this.stats.maxAcquireMs = ms;
    for (const observe of this.acquireObservers) observe(ms);
    if (queued && ms > this.slowMs) {
      this.stats.slowAcquires++;
      // At most one line per 10 s: under overload a warning per acquire
      // would itself eat the CPU the pool is waiting for.
      const now = Date.now();
      if (now - this.lastSlowWarning < 10_000) return client;
      this.lastSlowWarning = now;
      this.log.warn(
        { acquire_ms: Math.round(ms), waiting: this.pool.waitingCount, total: this.pool.totalCount, slow_acquires: this.stats.slowAcquires },
        `database connection took ${Math.round(ms)} ms to acquire (slow_acquire_threshold_ms=${this.slowMs}); raise WEFT_DB_POOL_MAX or look for long transactions`,
      );
    }
    return client;
  }

  /**
   * Run `work` in one transaction. COMMIT on return, ROLLBACK on throw.
   * Serialization failures and deadlocks are retried a few times, since two
   * orchestrators may race on the same task.
   */
  async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.acquire();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        if (isDisconnect(err)) broken = err as Error;
        else await client.query('ROLLBACK').catch(() => undefined);
        const code = (err as { code?: string }).code;
        if ((code === '40001' || code === '40P01') && attempt < 5) continue;
        throw err;
      } finally {
        // A connection that died or timed out mid-transaction is not reused.
        client.release(broken);
      }
    }
  }

  /**
   * Open `n` connections now rather than on the first requests, so the
   * first steps of a fresh process do not each pay a connection set-up.
   */
  async warm(n: number): Promise<void> {
    const clients = await Promise.all(Array.from({ length: Math.min(n, this.max) }, () => this.pool.connect()));
    for (const c of clients) c.release();
  }

  poolStats(): PoolStats {
    const { totalCount, idleCount, waitingCount } = this.pool;
    return { total: totalCount, idle: idleCount, inUse: totalCount - idleCount, waiting: waitingCount, ...this.stats };
  }

  /** Run `fn` when this database is closed, before the pool ends. */
  onClose(fn: () => Promise<void>): void {
    this.closers.push(fn);
  }

  async close(): Promise<void> {
    for (const fn of this.closers.splice(0)) await fn().catch(() => undefined);
    await this.pool.end();
  }
}

/** Connect and check the server answers; the error says how to fix a bad URL. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const db = new Database(options);
  try {
    await db.query('SELECT 1');
  } catch (err) {
    await db.close().catch(() => undefined);
    throw new DatabaseError(
      `cannot connect to PostgreSQL at ${redactUrl(options.url)}: ${scrubSecrets((err as Error).message, secretsOf(options.url))}. ` +
        'Check WEFT_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/weft), or unset it to use the embedded PostgreSQL.',
      { cause: err },
    );
  }
  return db;
}

/**
 * The connection died (not the statement): the server went away, or the
 * backend was terminated. The one table of such codes is isUnreachable's.
 */
export function isDisconnect(err: unknown): boolean {
  return isUnreachable(err);
}

/** For statements that may legitimately run for long (VACUUM): the pool's read timeout does not apply. */
export const NO_READ_TIMEOUT = 7 * 24 * 3_600_000;

/** Where a connection URL points, without its password (for logs and /health). */
export interface DatabaseLocation {
  host: string;
  port: number;
  database: string;
  user: string;
}

export function describeDatabase(url: string): DatabaseLocation {
  try {
    const u = new URL(url);
    return {
      host: decodeURIComponent(u.hostname || u.searchParams.get('host') || 'localhost'),
      port: Number(u.port || 5432),
      database: decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres',
      user: decodeURIComponent(u.username),
    };
  } catch {
    return { host: '?', port: 0, database: '?', user: '?' };
  }
}
