import type { Database } from './database.js';
import type { TaskHistory, Transition } from '../core/api-types.js';

export type { TaskHistory, Transition } from '../core/api-types.js';

const HISTORY_SQL = `
  WITH scope AS (
    SELECT t.id, s.id AS step_id FROM weft.tasks t LEFT JOIN weft.steps s ON s.task_id = t.id AND s.name = $2
     WHERE t.id = $1 AND ($2::text IS NULL OR s.id IS NOT NULL)),
  rows AS (
    (SELECT tt.at, NULL::text AS step, tt.seq, tt.from_state, tt.to_state, tt.process_id, tt.metadata
       FROM weft.task_transitions tt JOIN scope ON tt.task_id = scope.id WHERE $2::text IS NULL
     UNION ALL
     SELECT st.at, s.name, st.seq, st.from_state, st.to_state, st.process_id, st.metadata
       FROM weft.step_transitions st JOIN scope ON st.task_id = scope.id JOIN weft.steps s ON s.id = st.step_id
      WHERE scope.step_id IS NULL OR st.step_id = scope.step_id)
    ORDER BY 1, 2 NULLS FIRST, 3 LIMIT $3)
  SELECT (SELECT coalesce(json_agg(json_build_object('at', at, 'step', step, 'seq', seq, 'from', from_state, 'to', to_state,
                                                    'process', process_id, 'metadata', metadata)
                                   ORDER BY at, step NULLS FIRST, seq), '[]')
            FROM rows)::text AS transitions
    FROM scope`;

/**
 * A task's transitions and its steps', oldest first (ties: the task's before
 * its steps', then by sequence), at most `limit`; with `step` (a step name)
 * only that step's. Undefined when there is no such task, or no such step in it.
 */
export async function taskHistory(db: Database, taskId: string, opts: { step?: string; limit: number }): Promise<TaskHistory | undefined> {
  const { rows } = await db.queryIdempotent<{ transitions: string }>(HISTORY_SQL, [taskId, opts.step ?? null, opts.limit + 1], 'weft_task_history');
  if (rows.length === 0) return undefined;
  const transitions = JSON.parse(rows[0]!.transitions) as Transition[];
  const truncated = transitions.length > opts.limit;
  return { transitions: truncated ? transitions.slice(0, opts.limit) : transitions, truncated };
}
