import type pg from 'pg';
import { isUuid } from '../shared/ids.js';

/** A value that must be a UUID when inlined (checked, never quoted blindly). */
export class Uuid {
  constructor(readonly value: string) {
    if (!isUuid(value)) throw new TypeError(`not a UUID: ${JSON.stringify(value)}`);
  }
}

/**
 * Replace named parameters with SQL literals, for the simple query protocol,
 * which is the only way node-postgres sends several statements in one round
 * trip (e.g. `BEGIN; SELECT … FOR UPDATE`, or a statement and its `COMMIT`).
 * Strings go through the driver's escapeLiteral; ids must be wrapped in Uuid.
 */
export function inlined(client: pg.ClientBase, sql: string, params: Record<string, unknown>): string {
  return sql.replace(/\$([a-z_]+)/g, (_, name: string) => {
    if (!(name in params)) throw new Error(`SQL names $${name}, which was not given`);
    const v = params[name];
    if (v === null || v === undefined) return 'NULL';
    if (v instanceof Uuid) return `'${v.value}'::uuid`;
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new TypeError(`$${name} is not a finite number`);
      return String(v);
    }
    if (typeof v === 'string') return client.escapeLiteral(v);
    throw new TypeError(`$${name}: cannot inline a ${typeof v}`);
  });
}

/**
 * A CTE that turns off the WAL flush for the statement's own (implicit)
 * transaction. Reference it from the statement (`AND (SELECT off FROM
 * async_commit) IS NOT NULL`) so PostgreSQL evaluates it.
 *
 * Used where losing the write in a PostgreSQL crash is harmless. A worker's
 * claim and report: the step would be back where it was (enqueued, or
 * running with a lease) and be claimed or run again, the same outcome as a
 * worker crash, which weft handles anyway. A queue receive or ack: the
 * message would be delivered again, and the claim drops the duplicate. Nothing that depends
 * on the write can outlive it, because orchestration's next commit is
 * synchronous and flushing the WAL up to it flushes this write too. A
 * completed step, a dispatch and a finished task are always durable.
 */
export const ASYNC_COMMIT_CTE = `async_commit AS (SELECT set_config('synchronous_commit', 'off', true) AS off)`;
export const WITH_ASYNC_COMMIT = `(SELECT off FROM async_commit) IS NOT NULL`;
