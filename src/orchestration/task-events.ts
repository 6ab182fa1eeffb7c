import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from '../shared/logger.js';
import type { Database } from '../store/database.js';

/** How often a waiter re-reads its task, in case a notification was lost. */
const RECHECK_MS = 1_000;

export interface TaskEndEvent {
  task_id: string;
  state: 'complete' | 'error' | 'cancelled';
}

/**
 * Tells waiters the moment a task ends, whichever orchestrator finished it:
 * the orchestrator that finished it emits locally and sends NOTIFY weft_task
 * right after its COMMIT (not inside it: notifying transactions commit one at
 * a time in PostgreSQL); every orchestrator LISTENs. A waiter also re-reads
 * the task once a second, so a lost notification delays it by a second at
 * most and loses nothing.
 */
export class TaskEvents {
  private readonly emitter = new EventEmitter();
  private client: pg.Client | undefined;
  private closed = false;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
  ) {
    this.emitter.setMaxListeners(0);
  }

  async start(): Promise<void> {
    if (this.closed || this.client) return;
    const client = new pg.Client({ connectionString: this.db.url, application_name: 'weft-task-events', keepAlive: true });
    this.client = client;
    client.on('notification', (n) => {
      if (n.channel !== 'weft_task' || !n.payload) return;
      try {
        this.emit(JSON.parse(n.payload) as TaskEndEvent);
      } catch {
        /* not ours */
      }
    });
    const retry = (err: Error) => {
      if (this.client !== client || this.closed) return;
      this.client = undefined;
      client.end().catch(() => undefined);
      this.log.warn({ err: err.message }, 'lost the task-events LISTEN connection; reconnecting');
      setTimeout(() => void this.start().then(() => this.emitter.emit('reconnected')), 500).unref();
    };
    client.on('error', retry);
    client.on('end', () => retry(new Error('connection ended')));
    try {
      await client.connect();
      await client.query('LISTEN weft_task');
    } catch (err) {
      retry(err as Error);
    }
  }

  emit(event: TaskEndEvent): void {
    this.emitter.emit(event.task_id, event);
  }

  /** A task ended here: wake local waiters now, and other processes' through NOTIFY. */
  announce(event: TaskEndEvent): void {
    this.emit(event);
    this.db.query(`SELECT pg_notify('weft_task', $1)`, [JSON.stringify(event)], 'weft_task_notify').catch((err: Error) => {
      this.log.warn({ err: err.message, task_id: event.task_id }, 'NOTIFY weft_task failed; remote waiters will see the end on their next check');
    });
  }

  /**
   * Resolve when the task ends or `timeoutMs` passes (then with undefined).
   * `check` reads the current state and is called after subscribing (so an
   * end between the caller's read and the subscription is not missed) and
   * after a reconnect of the LISTEN connection.
   */
  async waitForEnd(taskId: string, timeoutMs: number, check: () => Promise<boolean>): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (ended: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(poll);
        this.emitter.off(taskId, onEnd);
        this.emitter.off('reconnected', recheck);
        resolve(ended);
      };
      const onEnd = () => finish(true);
      const recheck = () => void check().then((ended) => ended && finish(true), () => undefined);
      const timer = setTimeout(() => finish(false), timeoutMs);
      const poll = setInterval(recheck, RECHECK_MS);
      poll.unref();
      this.emitter.on(taskId, onEnd);
      this.emitter.on('reconnected', recheck);
      recheck();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.client;
    this.client = undefined;
    if (c) {
      c.removeAllListeners('end');
      await c.end().catch(() => undefined);
    }
  }
}
