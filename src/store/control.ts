import type { Database } from './database.js';
import { WeftError } from '../shared/errors.js';

/**
 * Cancel and retry: engine operations. The engine engineer owns their
 * bodies (they change task and step states on the hot path's terms); the
 * API and the dashboard call them through exactly these signatures.
 * Both throw NotFoundError for an unknown task (or step) and ConflictError
 * when the task is in a state the operation does not apply to, with a
 * message that says which state it is in.
 */

/** Cancel a running task and its open steps; `by` names who asked (for the audit row). */
export async function cancelTask(_db: Database, taskId: string, _by: string): Promise<{ state: string }> {
  throw new WeftError('not_implemented', `cancelling tasks is not implemented yet (task ${taskId}); it is being built in the engine`);
}

/** Retry a failed task (every failed step) or one failed step of it. */
export async function retryTask(_db: Database, taskId: string, opts: { step?: string; by: string }): Promise<{ state: string }> {
  throw new WeftError(
    'not_implemented',
    `retrying ${opts.step ? `step ${opts.step} of ` : ''}task ${taskId} is not implemented yet; it is being built in the engine`,
  );
}
