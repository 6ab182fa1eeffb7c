import type { Database } from './database.js';
import { ValidationError } from '../shared/errors.js';
import { isUuid } from '../shared/ids.js';
import { TASK_STATES, type TaskState } from '../core/states.js';
import type { TaskListPage, TaskSummary } from '../core/api-types.js';

export type { TaskFailure, TaskListPage, TaskSummary } from '../core/api-types.js';

/** Filters of the task list (GET /v1/tasks); every one optional. */
export interface TaskListFilter {
  state?: TaskState;
  namespace?: string;
  name?: string;
  /** Created at or after / before these instants. */
  created_after?: Date;
  created_before?: Date;
  /** A task id or the start of one (hex digits, dashes optional), or an exact idempotency key. */
  q?: string;
}

/** How much of an error message a row of the list carries. */
const LIST_MESSAGE_CHARS = 300;

/**
 * Newest first, keyset-paginated on the id: ids are UUIDv7, so id order is
 * creation order and the primary key serves every page, however deep.
 * The cursor is the last id of the previous page.
 */
export async function listTasks(db: Database, filter: TaskListFilter, page: { limit: number; cursor?: string }): Promise<TaskListPage> {
  if (page.cursor !== undefined && !isUuid(page.cursor))
    throw new ValidationError(`cursor ${JSON.stringify(page.cursor)} is not a cursor this API returned`, 'cursor');
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: (p: string) => string, v: unknown) => {
    values.push(v);
    where.push(sql(`$${values.length}`));
  };
  if (filter.namespace) add((p) => `t.namespace = ${p}`, filter.namespace);
  if (filter.name) add((p) => `t.name = ${p}`, filter.name);
  if (filter.created_after) add((p) => `t.created_at >= ${p}`, filter.created_after);
  if (filter.created_before) add((p) => `t.created_at < ${p}`, filter.created_before);
  if (filter.q) {
    const range = idPrefixRange(filter.q);
    if (range) {
      values.push(range[0], range[1], filter.q);
      const n = values.length;
      where.push(`(t.id BETWEEN $${n - 2}::uuid AND $${n - 1}::uuid OR t.idempotency_key = $${n})`);
    } else {
      add((p) => `t.idempotency_key = ${p}`, filter.q);
    }
  }
  const common = where.length ? where.join(' AND ') : 'true';
  const countValues = [...values];
  const pageWhere = [common];
  if (filter.state) {
    values.push(filter.state);
    pageWhere.push(`t.state = $${values.length}`);
  }
  if (page.cursor) {
    values.push(page.cursor);
    pageWhere.push(`t.id < $${values.length}`);
  }
  values.push(page.limit + 1);
  const [{ rows }, counted] = await Promise.all([
    db.query(
      `SELECT t.id, t.namespace, t.name, t.version, t.state, t.created_at, t.completed_at,
              (extract(epoch FROM t.completed_at - t.created_at) * 1000)::int AS duration_ms,
              s.steps, s.steps_complete, s.steps_failed,
              CASE WHEN t.error IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object(
                'step', t.error->>'step', 'reason', t.error->>'reason', 'by', t.error->>'by', 'class', t.error->'error'->>'class',
                'message', left(coalesce(t.error->'error'->>'message', t.error->>'message'), ${LIST_MESSAGE_CHARS}))) END AS error
         FROM weft.tasks t,
              LATERAL (SELECT count(*)::int AS steps,
                              count(*) FILTER (WHERE state = 'complete')::int AS steps_complete,
                              count(*) FILTER (WHERE state IN ('error', 'failed', 'waiting_retry'))::int AS steps_failed
                         FROM weft.steps WHERE task_id = t.id) s
        WHERE ${pageWhere.join(' AND ')}
        ORDER BY t.id DESC LIMIT $${values.length}`,
      values,
    ),
    db.query<{ state: string; n: number }>(`SELECT t.state, count(*)::int AS n FROM weft.tasks t WHERE ${common} GROUP BY t.state`, countValues),
  ]);
  const more = rows.length > page.limit;
  const tasks = (more ? rows.slice(0, page.limit) : rows) as TaskSummary[];
  const counts: Record<string, number> = Object.fromEntries(TASK_STATES.map((s) => [s, 0]));
  for (const r of counted.rows) counts[r.state] = r.n;
  return { tasks, next_cursor: more ? tasks[tasks.length - 1]!.id : null, counts };
}

/**
 * The smallest and largest UUID that start with `q` (hex digits, dashes
 * ignored), or undefined when `q` cannot be the start of an id. A range
 * keeps the search on the primary key.
 */
export function idPrefixRange(q: string): [string, string] | undefined {
  const hex = q.trim().toLowerCase().replace(/-/g, '');
  if (!/^[0-9a-f]{1,32}$/.test(hex)) return undefined;
  const shape = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  return [shape(hex.padEnd(32, '0')), shape(hex.padEnd(32, 'f'))];
}
