import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../shared/logger.js';
import type { Database } from '../store/database.js';
import { signalsOf, type Signals } from '../store/signals.js';
import type { Notice } from '../store/dispatch.js';
import type { LiveEvent, LiveEvents, StepChange, TaskEndEvent, TaskStartEvent } from './live-events.js';

/** How often a waiter re-reads its task, in case a notification was lost. */
const RECHECK_MS = 1_000;
/** How long a watch registration holds; renewed at a third of it. */
const WATCH_TTL_MS = 30_000;

/** Tasks this process created that it remembers (oldest forgotten first); a forgotten one costs its waiter one read. */
const OWN_TASKS_MAX = 20_000;

/** Task starts are told on this channel, only while someone watches the task list. */
const START_CHANNEL = 'weft_task_start';
/** A process watching the task list says so here (and again every WATCH_TTL_MS / 3 while it does). */
const LIST_WATCH_CHANNEL = 'weft_list_watch';

/**
 * Tells waiters the moment a task ends, whichever process ended it: the
 * worker that finished the task's last step (or the process that failed or
 * cancelled it) sends `weft_task` after its COMMIT through src/store/signals.ts,
 * which delivers it in-process at once and to every other process through
 * NOTIFY. A waiter also re-reads the task once a second, so a lost
 * notification delays it by a second at most and loses nothing.
 *
 * Live step changes (`watch`) are sent only for tasks someone watches: the
 * watch is registered in weft.task_watchers, which the finishing worker's
 * statement reads, so unwatched tasks cost nothing.
 */
export class TaskEvents implements LiveEvents {
  private readonly emitter = new EventEmitter();
  private readonly signals: Signals;
  private readonly watcherId = `w${randomBytes(6).toString('hex')}`;
  private readonly watched = new Map<string, number>();
  private unlisten: Array<() => void> = [];
  private renewTimer: NodeJS.Timeout | undefined;
  private started = false;
  private startListeners = 0;
  private listWatchTimer: NodeJS.Timeout | undefined;
  /** Until when some process (this one included) watches the task list, as last announced. */
  private listWatchedUntil = 0;
  /**
   * Tasks created by this process while its LISTEN connection was up, by id:
   * the connection's epoch then, and whether their end has been told since.
   * One whose end has not been told in the same epoch has not ended (every
   * end reaches this process: in-process, or through NOTIFY), so its waiter
   * needs no first read of the state.
   */
  private readonly ownTasks = new Map<string, { epoch: number; ended: boolean }>();
  /** Ends told recently (an end may be told before its creator records the task: two sockets in one loop turn). */
  private readonly recentEnds = new Set<string>();
  /** Bumped whenever the LISTEN connection came back: ends may have been missed before. */
  private epoch = 0;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
  ) {
    this.emitter.setMaxListeners(0);
    this.signals = signalsOf(db, log);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.unlisten.push(
      await this.signals.listen('weft_task', (payload) => {
        const e = parse<TaskEndEvent>(payload);
        if (!e?.task_id) return;
        this.noteEnd(e.task_id);
        this.emitter.emit(e.task_id, e);
        this.emitter.emit('*', e);
      }),
      await this.signals.listen('weft_step', (payload) => {
        const e = parse<Omit<StepChange, 'kind'> & { attempt?: number }>(payload);
        if (!e?.task_id || !this.watched.has(e.task_id)) return;
        this.emitter.emit(`step:${e.task_id}`, {
          kind: 'step',
          task_id: e.task_id,
          step_id: e.step_id,
          name: e.name,
          state: e.state,
          attempts: e.attempt ?? e.attempts,
        } satisfies StepChange);
      }),
      await this.signals.listen(START_CHANNEL, (payload) => {
        const e = parse<TaskStartEvent>(payload);
        if (e?.task_id) this.emitter.emit('start', e);
      }),
      await this.signals.listen(LIST_WATCH_CHANNEL, () => {
        this.listWatchedUntil = Date.now() + WATCH_TTL_MS;
      }),
      this.signals.onReconnect(() => {
        this.epoch++;
        this.emitter.emit('reconnected');
      }),
    );
  }

  private noteEnd(taskId: string): void {
    const own = this.ownTasks.get(taskId);
    if (own) own.ended = true;
    this.recentEnds.add(taskId);
    if (this.recentEnds.size > OWN_TASKS_MAX) this.recentEnds.delete(this.recentEnds.values().next().value!);
  }

  /** This process has just created these tasks (after their COMMIT): their waiters here need not read their state first. */
  created(taskIds: readonly string[]): void {
    if (!this.started || !this.signals.isListening) return;
    for (const id of taskIds) {
      this.ownTasks.set(id, { epoch: this.epoch, ended: this.recentEnds.has(id) });
      if (this.ownTasks.size > OWN_TASKS_MAX) this.ownTasks.delete(this.ownTasks.keys().next().value!);
    }
  }

  /**
   * True when the task is known not to have ended: this process created it,
   * has listened without a break since, and no end of it was told. Anything
   * else (another process's task, an end told, a reconnect) is unknown: read
   * the database.
   */
  knownRunning(taskId: string): boolean {
    const own = this.ownTasks.get(taskId);
    return own !== undefined && !own.ended && own.epoch === this.epoch && this.signals.isListening;
  }

  /** A task ended in this process: wake local waiters now, and other processes' through NOTIFY. */
  announce(event: TaskEndEvent): void {
    this.signals.send(undefined, [{ channel: 'weft_task', payload: JSON.stringify(event) }]);
  }

  /** Every task end any process reports (the dashboard's live list, latency metrics). */
  onTaskEnd(listener: (e: TaskEndEvent) => void): () => void {
    this.emitter.on('*', listener);
    return () => this.emitter.off('*', listener);
  }

  /**
   * Every task that starts running (created or retried) in any process,
   * while the listener is subscribed. Task starts are sent only while some
   * process has such a listener (see {@link startsWatched}): subscribing
   * announces it to every orchestrator, and renews the announcement while
   * it lasts, so an unwatched list costs task creation nothing.
   */
  onTaskStart(listener: (e: TaskStartEvent) => void): () => void {
    this.emitter.on('start', listener);
    if (++this.startListeners === 1) {
      this.announceListWatch();
      this.listWatchTimer = setInterval(() => this.announceListWatch(), WATCH_TTL_MS / 3);
      this.listWatchTimer.unref();
    }
    return () => {
      this.emitter.off('start', listener);
      if (--this.startListeners === 0) clearInterval(this.listWatchTimer);
    };
  }

  private announceListWatch(): void {
    this.signals.send(undefined, [{ channel: LIST_WATCH_CHANNEL, payload: this.watcherId }]);
  }

  /** Whether some process watches the task list (announced within WATCH_TTL_MS): task starts are worth telling. */
  startsWatched(): boolean {
    return Date.now() < this.listWatchedUntil;
  }

  /** The notice telling a task start to the processes that watch the task list, for the caller to deliver after COMMIT. */
  startNotice(event: TaskStartEvent): Notice {
    return { channel: START_CHANNEL, payload: JSON.stringify(event) };
  }

  /**
   * Live changes of one task: its steps' states and its end, until the
   * returned function is called. Registers the watch in weft.task_watchers
   * (renewed while it lasts) and resolves once that is committed: the
   * statements that change the task's steps from then on see it and tell
   * them (a failed registration is logged, and the renewal tries again).
   */
  async watch(taskId: string, listener: (e: LiveEvent) => void): Promise<() => void> {
    const onStep = (e: StepChange) => listener(e);
    const onEnd = (e: TaskEndEvent) => listener({ kind: 'task', ...e });
    this.emitter.on(`step:${taskId}`, onStep);
    this.emitter.on(taskId, onEnd);
    this.watched.set(taskId, (this.watched.get(taskId) ?? 0) + 1);
    this.renewTimer ??= setInterval(() => void this.registerWatches([...this.watched.keys()]), WATCH_TTL_MS / 3).unref();
    await this.registerWatches([taskId]);
    return () => {
      this.emitter.off(`step:${taskId}`, onStep);
      this.emitter.off(taskId, onEnd);
      const n = (this.watched.get(taskId) ?? 1) - 1;
      if (n > 0) {
        this.watched.set(taskId, n);
        return;
      }
      this.watched.delete(taskId);
      this.db.query('DELETE FROM weft.task_watchers WHERE task_id = $1 AND watcher = $2', [taskId, this.watcherId]).catch(() => undefined);
      if (this.watched.size === 0) {
        clearInterval(this.renewTimer);
        this.renewTimer = undefined;
      }
    };
  }

  private async registerWatches(taskIds: string[]): Promise<void> {
    if (taskIds.length === 0) return;
    await this.db
      .query(
        `INSERT INTO weft.task_watchers (task_id, watcher, expires_at)
         SELECT t, $2, clock_timestamp() + make_interval(secs => $3 / 1000.0) FROM unnest($1::uuid[]) AS t
         ON CONFLICT (task_id, watcher) DO UPDATE SET expires_at = excluded.expires_at`,
        [taskIds, this.watcherId, WATCH_TTL_MS],
      )
      .catch((err: Error) => this.log.warn({ err: err.message }, 'registering live task watches failed; step changes may not be shown until the next renewal'));
  }

  /**
   * Resolve when the task ends or `timeoutMs` passes (then with false).
   * `check` reads the current state and is called after subscribing (so an
   * end between the caller's read and the subscription is not missed), once
   * a second, and after a reconnect of the LISTEN connection. An error of the
   * first check rejects the wait (a transient one of a later check does not).
   * For a task {@link knownRunning} the first check is skipped: no read until
   * the end is told (or the once-a-second re-check). `first`, when given, is
   * the first check instead of `check`.
   */
  async waitForEnd(taskId: string, timeoutMs: number, check: () => Promise<boolean>, signal?: AbortSignal, first?: () => Promise<boolean>): Promise<boolean> {
    const running = this.knownRunning(taskId);
    return new Promise<boolean>((resolve, reject) => {
      let done = false;
      const finish = (ended: boolean, err?: unknown) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(poll);
        this.emitter.off(taskId, onEnd);
        this.emitter.off('reconnected', recheck);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(ended);
      };
      const onEnd = () => finish(true);
      const onAbort = () => finish(false);
      let firstPending = true;
      const recheck = () => {
        const initial = firstPending;
        firstPending = false;
        (initial && first ? first : check)().then(
          (ended) => ended && finish(true),
          // The first check's error (e.g. no such task) is the caller's answer; later ones are retried.
          (err) => initial && finish(false, err),
        );
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      const poll = setInterval(recheck, RECHECK_MS);
      poll.unref();
      this.emitter.on(taskId, onEnd);
      this.emitter.on('reconnected', recheck);
      signal?.addEventListener('abort', onAbort);
      if (running) firstPending = false;
      else recheck();
    });
  }

  async close(): Promise<void> {
    for (const off of this.unlisten.splice(0)) off();
    clearInterval(this.renewTimer);
    clearInterval(this.listWatchTimer);
    this.started = false;
  }
}

function parse<T>(payload: string): T | undefined {
  try {
    return JSON.parse(payload) as T;
  } catch {
    return undefined;
  }
}
