import type { LiveEvent, TaskEndEvent, TaskStartEvent } from './task-events.js';

export type { LiveEvent, TaskEndEvent, TaskStartEvent } from './task-events.js';

/**
 * What the dashboard's server-sent events are made of, as the API sees it
 * (`buildApi({ liveEvents })`). The orchestrator's TaskEvents implements it:
 * every task end and start from any process, and every step change of a watched task
 * from whichever worker made it (see src/orchestration/task-events.ts).
 */
export interface LiveEvents {
  /** Every task end any process reports. Returns the unsubscribe function. */
  onTaskEnd(listener: (e: TaskEndEvent) => void): () => void;
  /** Every task that starts running (created, or retried), from any process. Returns the unsubscribe function. */
  onTaskStart(listener: (e: TaskStartEvent) => void): () => void;
  /** Live step changes and the end of one task. Returns the unsubscribe function. */
  watch(taskId: string, listener: (e: LiveEvent) => void): () => void;
}
