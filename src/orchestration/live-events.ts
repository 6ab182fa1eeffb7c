import { EventEmitter } from 'node:events';
import type { Database } from '../store/database.js';
import type { Logger } from '../shared/logger.js';
import type { Orchestrator, StepEvent } from './orchestrator.js';
import { TaskEvents, type TaskEndEvent } from './task-events.js';

/** A task ended, whichever process ended it. */
export interface TaskEnd {
  kind: 'task';
  task_id: string;
  state: string;
}

/** A step of a task changed state. */
export interface StepChange {
  kind: 'step';
  task_id: string;
  step_id: string;
  name: string;
  state: string;
  attempts: number;
}

export interface TaskEndNotice {
  task_id: string;
  state: 'complete' | 'error' | 'cancelled';
  namespace?: string;
  name?: string;
  ms?: number;
}

/**
 * What the dashboard's server-sent events are made of. The engine owns the
 * real implementation (every task end and every step change from any
 * process); the API depends only on this interface and gets one through
 * `buildApi({ liveEvents })`.
 */
export interface LiveEvents {
  /** Every task end any process reports. Returns the unsubscribe function. */
  onTaskEnd(listener: (e: TaskEndNotice) => void): () => void;
  /** Live step changes and the end of one task. Returns the unsubscribe function. */
  watch(taskId: string, listener: (e: StepChange | TaskEnd) => void): () => void;
}

/**
 * The honest implementation available today:
 *
 * - task ends from every process, by LISTENing on weft_task (the channel
 *   the orchestrators' TaskEvents NOTIFY after each task ends);
 * - step changes only from the orchestrator given here, and only those it
 *   accepts (a step completing, failing, waiting to retry): no other
 *   process reports step changes yet, and claims (enqueued → running) are
 *   not announced at all. With one orchestrator (`weft dashboard`,
 *   `weft run --ui`) that covers every accepted step.
 */
export class NotifyLiveEvents implements LiveEvents {
  private readonly emitter = new EventEmitter();
  private readonly feed: TaskEndFeed;
  private readonly onStep = (e: StepEvent) =>
    this.emitter.emit(`task:${e.task_id}`, { kind: 'step', task_id: e.task_id, step_id: e.step_id, name: e.name, state: e.state, attempts: e.attempts } satisfies StepChange);

  constructor(db: Database, log: Logger, private readonly orchestrator?: Orchestrator) {
    this.emitter.setMaxListeners(0);
    this.feed = new TaskEndFeed(db, log, (e) => {
      if (typeof e.task_id !== 'string') return;
      this.emitter.emit('end', e);
      this.emitter.emit(`task:${e.task_id}`, { kind: 'task', task_id: e.task_id, state: e.state } satisfies TaskEnd);
    });
  }

  async start(): Promise<void> {
    this.orchestrator?.on('step', this.onStep);
    await this.feed.start();
  }

  onTaskEnd(listener: (e: TaskEndNotice) => void): () => void {
    this.emitter.on('end', listener);
    return () => this.emitter.off('end', listener);
  }

  watch(taskId: string, listener: (e: StepChange | TaskEnd) => void): () => void {
    const key = `task:${taskId}`;
    this.emitter.on(key, listener);
    return () => this.emitter.off(key, listener);
  }

  async close(): Promise<void> {
    this.orchestrator?.off('step', this.onStep);
    await this.feed.close();
  }
}

/** TaskEvents' own LISTEN weft_task connection (with its reconnects), handing every end to one listener. */
class TaskEndFeed extends TaskEvents {
  constructor(db: Database, log: Logger, private readonly listener: (e: TaskEndNotice) => void) {
    super(db, log);
  }

  override emit(event: TaskEndEvent): void {
    super.emit(event);
    this.listener(event);
  }
}
