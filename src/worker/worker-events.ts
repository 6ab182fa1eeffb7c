import type { ClaimedStep, FinishedStep, StatementOutcome, TaskEnded } from '../store/events.js';
import type { RunOutcome } from './runner.js';
import type { Finish } from './step-outcome.js';

/**
 * What a worker's loop tells its observers (tracing, counters and logs, the
 * public `step` and `task` events): the loop emits, and knows none of them.
 * Every event is emitted synchronously at the point it names, so an observer
 * sees a step's events in order (claimed, running, ran, then finished, given
 * back, lost or dropped).
 */
export interface WorkerEventMap {
  /** Steps claimed for this worker, about to start; `startedAt`: when the claiming statement started (traceClock). */
  claimed: [steps: ClaimedStep[], startedAt: number, how: 'claim' | 'finish'];
  /** The handler is about to run. */
  running: [step: ClaimedStep];
  /** The handler returned or failed (the error record made storable). */
  ran: [step: ClaimedStep, outcome: RunOutcome];
  /** The step's task was cancelled while it ran: its outcome is dropped, not written. */
  dropped: [step: ClaimedStep];
  /** A batch's finish statements committed (`startedAt`: when the first started, traceClock). */
  committed: [batch: readonly Finish[], outcomes: StatementOutcome[], startedAt: number];
  /** A run's outcome is recorded (by this write, or by an earlier one whose answer was lost). */
  finished: [finish: Finish, recorded: FinishedStep];
  /** A refused run's step went back to the queue without using an attempt. */
  givenBack: [finish: Finish];
  /** The fence refused a run's finish: the step was no longer this run's. */
  lost: [finish: Finish];
  /** A statement of this worker ended a task. */
  taskEnded: [task: TaskEnded];
}

type Listener<K extends keyof WorkerEventMap> = (...args: WorkerEventMap[K]) => void;

/**
 * A typed, synchronous event hub. Cheaper than an EventEmitter on the step
 * path: an event nobody observes costs one property read.
 */
export class WorkerEvents {
  private readonly listeners: { [K in keyof WorkerEventMap]?: Array<Listener<K>> } = {};

  /** Observe `event`; returns the way to stop. */
  on<K extends keyof WorkerEventMap>(event: K, listener: Listener<K>): () => void {
    const list = (this.listeners[event] ??= []) as Array<Listener<K>>;
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  emit<K extends keyof WorkerEventMap>(event: K, ...args: WorkerEventMap[K]): void {
    const list = this.listeners[event] as Array<Listener<K>> | undefined;
    if (list) for (const listener of list) listener(...args);
  }
}
