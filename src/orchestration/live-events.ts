/*
 * The live events' shapes live here, beside the interface the API consumes; TaskEvents
 * (task-events.ts) implements it and imports them, so the two modules form no cycle.
 */

import type { LiveEvent, StepChange, TaskEndEvent } from '../core/api-types.js';

// The events' wire shapes are the API's (core/api-types.ts, which the client reads too).
export type { LiveEvent, StepChange, TaskEndEvent };

/** A task started running: it was created, or retried after it ended. */
export interface TaskStartEvent {
  task_id: string;
  /** pending: created to start later (its run_at). */
  state: 'pending' | 'running';
  /** The template (on creation). */
  namespace?: string;
  name?: string;
  /** created (now, or to start later: state pending), retried, or start_time: a delayed task's start time came. */
  cause: 'created' | 'retried' | 'start_time';
  /** Who retried it (`token:NAME`, `anonymous`). */
  by?: string;
}

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
  /**
   * Live step changes and the end of one task. Resolves, with the unsubscribe
   * function, once the watch is registered: a step change committed after
   * that is told (one committed while it registers may not be).
   */
  watch(taskId: string, listener: (e: LiveEvent) => void): Promise<() => void>;
}
