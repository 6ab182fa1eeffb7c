import type { Database } from './database.js';
import type { TaskHistory, Transition } from '../core/api-types.js';

export type { TaskHistory, Transition } from '../core/api-types.js';

const HISTORY_SQL = 'SELECT weft.task_history($1, $2, $3) AS transitions';

/**
 * A task's transitions and its steps', oldest first (ties: the task's before
 * its steps', then by sequence), at most `limit`; with `step` (a step name)
 * only that step's. Undefined when there is no such task, or no such step in it.
 */
export async function taskHistory(db: Database, taskId: string, opts: { step?: string; limit: number }): Promise<TaskHistory | undefined> {
  const { rows } = await db.queryIdempotent<{ transitions: string | null }>(HISTORY_SQL, [taskId, opts.step ?? null, opts.limit + 1], 'weft_task_history');
  const text = rows[0]?.transitions;
  if (text === null || text === undefined) return undefined;
  const transitions = JSON.parse(text) as Transition[];
  const truncated = transitions.length > opts.limit;
  return { transitions: truncated ? transitions.slice(0, opts.limit) : transitions, truncated };
}
