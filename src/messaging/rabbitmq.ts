import amqp from 'amqplib';
import { backoffMs, isUnreachable } from '../shared/retry.js';
import type { Logger } from '../shared/logger.js';
import { isDataError, type Database } from '../store/database.js';
import type { Dispatch, OutboxMessage } from '../store/events.js';
import { deleteOutbox, withDispatchNotices, type Notice } from '../store/dispatch.js';
import { signalsOf, type Signals } from '../store/signals.js';
import { deliveryFor } from '../store/delivery.js';
import { deadLetterExchange, deadLetterQueue, stepMessageProblem, type StepMessage } from './queues.js';
import { traceDelivery, traceMessageHeaders, traceMessageReceived, tracing } from '../telemetry/index.js';
import { MessagingError, type BusHealth, type ConsumeOptions, type MessageBus, type StepConsumer, type Subscription } from './types.js';
import { redactUrl } from '../shared/redact.js';

export interface RabbitBusOptions {
  url: string;
  /** Prefix of every queue and exchange name, so several weft installations (or test runs) can share a broker. */
  prefix?: string;
  /** How long `publish` waits for a lost connection to come back before failing. */
  publishTimeoutMs?: number;
}

interface Held {
  stepId: string;
  /** The queue it came from (its full name), for dead-lettering. */
  queue: string;
  channel: amqp.Channel;
  msg: amqp.ConsumeMessage;
}

interface ConsumerState {
  queues: string[];
  consumer: StepConsumer;
  options: ConsumeOptions;
  channel?: amqp.Channel;
  active: boolean;
  /** Deliveries not claimed yet (no room, or a claim in progress): unacknowledged, so the prefetch holds the broker back. */
  held: Held[];
  claiming: boolean;
  scheduled: boolean;
  /** Claims in a row that failed because PostgreSQL was unreachable (the backoff grows with it). */
  unreachable: number;
  /** While PostgreSQL is unreachable: when to try the held deliveries again. */
  retryTimer?: NodeJS.Timeout;
}

/**
 * RabbitMQ (WEFT_MESSAGING=rabbitmq) through amqplib: durable queues,
 * persistent messages, publisher confirms, manual acks with a prefetch,
 * dead-lettering to `<prefix>.dlx` → `<queue>.dlq`, and TCP_NODELAY on the
 * socket (with Nagle on, a request/reply hop cost ~44 ms here instead of
 * ~1.4 ms). A lost connection is re-established with backoff; consumers are
 * re-attached and publishers wait for it.
 *
 * Statements that make steps ready write their messages to weft.outbox in the
 * same transaction; `deliver` publishes them after COMMIT and deletes them
 * once confirmed. A consumer claims the steps of the deliveries that arrive
 * in the same tick with one statement, and acknowledges them once the claim
 * committed (claimed or found stale alike).
 */
export class RabbitMessageBus implements MessageBus {
  readonly backend = 'rabbitmq' as const;
  readonly delivery = deliveryFor('outbox');
  private readonly signals: Signals;
  private readonly publishing = new Set<Promise<void>>();
  private connection: amqp.ChannelModel | undefined;
  private publisher: amqp.ConfirmChannel | undefined;
  private connecting: Promise<void> | undefined;
  private readonly asserted = new Set<string>();
  private readonly consumers = new Set<ConsumerState>();
  private closed = false;
  /** Why the broker blocks publishers (a disk or memory alarm), while it does. */
  private blocked: string | undefined;
  private readonly prefix: string;
  private readonly dlx: string;

  constructor(
    private readonly options: RabbitBusOptions,
    private readonly db: Database,
    private readonly log: Logger,
  ) {
    this.prefix = options.prefix ?? 'weft';
    this.dlx = deadLetterExchange(this.prefix);
    this.signals = signalsOf(db, log);
  }

  private name(queue: string): string {
    return `${this.prefix}.${queue}`;
  }

  /** Connect (once; concurrent callers share the attempt). */
  async connect(): Promise<void> {
    if (this.publisher) return;
    if (!this.connecting) {
      this.connecting = this.open().finally(() => {
        this.connecting = undefined;
      });
    }
    await this.connecting;
  }

  private async open(): Promise<void> {
    let conn: amqp.ChannelModel;
    try {
      conn = await amqp.connect(this.options.url, { noDelay: true, timeout: 5_000 });
    } catch (err) {
      throw new MessagingError(
        `cannot connect to RabbitMQ at ${redactUrl(this.options.url)}: ${(err as Error).message}. ` +
          'Start it (rabbitmq-server -detached) or set WEFT_AMQP_URL; or use WEFT_MESSAGING=pg.',
        { cause: err },
      );
    }
    conn.on('error', (err: Error) => this.log.warn({ err: err.message }, 'RabbitMQ connection error'));
    // A broker that runs out of disk or memory blocks publishers: say so in
    // /health, and do not wait for confirms that cannot come.
    conn.connection.on('blocked', (reason: string) => {
      this.blocked = reason || 'resource alarm';
      this.log.warn({ reason: this.blocked }, 'RabbitMQ is blocking publishers; step messages wait in the outbox until it stops');
    });
    conn.connection.on('unblocked', () => {
      this.blocked = undefined;
      this.log.info('RabbitMQ accepts publishers again');
    });
    conn.on('close', () => this.lost(conn));
    const publisher = await conn.createConfirmChannel();
    publisher.on('error', (err: Error) => this.log.warn({ err: err.message }, 'RabbitMQ publish channel error'));
    await publisher.assertExchange(this.dlx, 'direct', { durable: true });
    this.asserted.clear();
    this.connection = conn;
    this.publisher = publisher;
    for (const c of this.consumers) if (c.active) await this.attach(c);
  }

  private lost(conn: amqp.ChannelModel): void {
    if (this.connection !== conn) return;
    this.connection = undefined;
    this.publisher = undefined;
    for (const c of this.consumers) c.channel = undefined;
    if (this.closed) return;
    this.log.warn('RabbitMQ connection closed; reconnecting');
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    for (let attempt = 1; !this.closed; attempt++) {
      try {
        await this.connect();
        this.log.info({ attempt }, 'RabbitMQ connection re-established');
        return;
      } catch (err) {
        const delay = Math.round(backoffMs(attempt, 200, 5_000));
        this.log.warn({ err: (err as Error).message, retry_in_ms: delay }, 'RabbitMQ reconnect failed');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async assertQueue(channel: amqp.Channel, queue: string): Promise<void> {
    const q = this.name(queue);
    if (this.asserted.has(q)) return;
    await channel.assertQueue(q, {
      durable: true,
      arguments: { 'x-dead-letter-exchange': this.dlx, 'x-dead-letter-routing-key': q },
    });
    await channel.assertQueue(deadLetterQueue(q), { durable: true });
    await channel.bindQueue(deadLetterQueue(q), this.dlx, q);
    this.asserted.add(q);
  }

  /** Publish with confirms; waits (up to `timeoutMs`, default publishTimeoutMs) for a lost connection to come back and for the confirms. */
  private async publish(messages: OutboxMessage[], timeoutMs = this.options.publishTimeoutMs ?? 10_000): Promise<void> {
    if (messages.length === 0) return;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.connect();
        const ch = this.publisher!;
        for (const m of messages) {
          await this.assertQueue(ch, m.queue);
          ch.sendToQueue(this.name(m.queue), Buffer.from(JSON.stringify(m.body)), {
            persistent: true,
            contentType: 'application/json',
            headers: tracing.enabled ? traceMessageHeaders(m.body, m.queue) : undefined,
          });
        }
        await withTimeout(
          ch.waitForConfirms(),
          Math.max(1, deadline - Date.now()),
          () =>
            new MessagingError(
              `RabbitMQ did not confirm ${messages.length} step message(s) within ${timeoutMs} ms` +
                (this.blocked ? ` (it is blocking publishers: ${this.blocked})` : ''),
            ),
        );
        return;
      } catch (err) {
        if (this.closed || Date.now() > deadline) {
          throw err instanceof MessagingError ? err : new MessagingError(`publishing to RabbitMQ failed: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  deliver(dispatch: Dispatch, told: Notice[] = []): void {
    const notices = withDispatchNotices(dispatch, told);
    if (tracing.enabled) traceDelivery('rabbitmq', dispatch, notices);
    if (notices.length) this.signals.send(undefined, notices);
    if (dispatch.outbox.length === 0) return;
    const work = this.republish(dispatch.outbox).catch((err: Error) =>
      this.log.warn({ err: err.message, messages: dispatch.outbox.length }, 'publishing step messages failed; the outbox sweep will send them'),
    );
    this.publishing.add(work);
    void work.finally(() => this.publishing.delete(work));
  }

  async republish(messages: OutboxMessage[], options: { timeoutMs?: number } = {}): Promise<void> {
    if (messages.length === 0) return;
    await this.publish(messages, options.timeoutMs);
    await deleteOutbox(
      this.db,
      messages.map((m) => m.id),
    ).catch((err: Error) => this.log.warn({ err: err.message }, 'deleting published outbox rows failed; the sweep will publish them again (harmless)'));
  }

  async consume(queues: string[], consumer: StepConsumer, options: ConsumeOptions): Promise<Subscription> {
    const state: ConsumerState = { queues, consumer, options, active: true, held: [], claiming: false, scheduled: false, unreachable: 0 };
    this.consumers.add(state);
    await this.connect();
    if (!state.channel) await this.attach(state);
    return {
      poke: () => this.schedule(state),
      stop: async () => {
        state.active = false;
        clearTimeout(state.retryTimer);
        this.consumers.delete(state);
        const ch = state.channel;
        state.channel = undefined;
        // Cancel consumption; held deliveries go back to the broker for another worker.
        if (ch) {
          for (const tag of (ch as unknown as { __weftTags?: string[] }).__weftTags ?? []) await ch.cancel(tag).catch(() => undefined);
        }
        for (const h of state.held.splice(0)) settle(h, 'requeue');
      },
    };
  }

  /** Claim what the consumer holds, as room allows, in one statement per tick. */
  private schedule(state: ConsumerState): void {
    if (state.scheduled || state.claiming || state.held.length === 0) return;
    state.scheduled = true;
    setImmediate(() => {
      state.scheduled = false;
      void this.claimHeld(state);
    });
  }

  /**
   * Claim held deliveries, as many as the consumer has room for, and settle
   * them:
   * - claimed (or found stale: a duplicate): acknowledged;
   * - PostgreSQL unreachable: kept, unacknowledged (so the prefetch holds the
   *   broker back), and tried again after a backoff, as the PostgreSQL
   *   queue's consumer does; handing them back at once made the broker
   *   redeliver them ~1,500 times a second (issue 15);
   * - refused because of a message's data: that message is dead-lettered with
   *   the reason, the others are claimed one by one;
   * - any other failure: handed back to the broker.
   */
  private async claimHeld(state: ConsumerState): Promise<void> {
    if (state.claiming || !state.active || state.retryTimer) return;
    const room = state.consumer.room();
    if (room <= 0 || state.held.length === 0) return;
    const batch = state.held.splice(0, room);
    state.claiming = true;
    try {
      await this.claimAndSettle(state, batch);
      state.unreachable = 0;
    } catch (err) {
      if (isUnreachable(err) && state.active) {
        state.held.unshift(...batch);
        state.unreachable++;
        const delay = Math.round(backoffMs(state.unreachable, 200, 5_000));
        this.log.warn(
          { err: (err as Error).message, steps: batch.length, retry_in_ms: delay },
          'PostgreSQL is unreachable; holding the delivered steps and claiming them again after a backoff',
        );
        state.retryTimer = setTimeout(() => {
          state.retryTimer = undefined;
          this.schedule(state);
        }, delay);
      } else {
        this.log.warn({ err: (err as Error).message, steps: batch.length }, 'claiming delivered steps failed; the messages go back to the broker');
        for (const h of batch) settle(h, 'requeue');
      }
    } finally {
      state.claiming = false;
    }
    this.schedule(state);
  }

  private async claimAndSettle(state: ConsumerState, batch: Held[]): Promise<void> {
    try {
      await state.consumer.claimDelivered(batch.map((h) => h.stepId));
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (batch.length === 1) return this.deadLetter(batch[0]!, `claiming step ${batch[0]!.stepId} failed on its data: ${(err as Error).message}`);
      for (const h of batch) await this.claimAndSettle(state, [h]);
      return;
    }
    for (const h of batch) settle(h, 'ack');
  }

  /**
   * Move a message that can never be claimed to its queue's dead-letter queue
   * with the reason (header `x-weft-dead-letter-reason`), then acknowledge
   * it. Should that publish fail, the broker dead-letters it (a rejection,
   * without the reason).
   */
  private deadLetter(h: Held, reason: string): void {
    this.log.warn({ queue: h.queue, reason, body: h.msg.content.toString('utf8').slice(0, 200) }, 'dead-lettering a step message');
    const publisher = this.publisher;
    try {
      if (!publisher) throw new Error('not connected');
      publisher.sendToQueue(deadLetterQueue(h.queue), h.msg.content, {
        persistent: true,
        contentType: h.msg.properties.contentType,
        headers: { ...h.msg.properties.headers, 'x-weft-dead-letter-reason': reason.slice(0, 1_000), 'x-weft-queue': h.queue },
      });
      publisher.waitForConfirms().then(
        () => settle(h, 'ack'),
        () => settle(h, 'reject'),
      );
    } catch {
      settle(h, 'reject');
    }
  }

  private async attach(state: ConsumerState): Promise<void> {
    const conn = this.connection;
    if (!conn) return;
    const ch = await conn.createChannel();
    ch.on('error', (err: Error) => this.log.warn({ err: err.message }, 'RabbitMQ consumer channel error'));
    await ch.prefetch(state.options.prefetch);
    const tags: string[] = [];
    for (const queue of state.queues) {
      await this.assertQueue(ch, queue);
      const { consumerTag } = await ch.consume(
        this.name(queue),
        (msg) => {
          if (!msg) return; // consumer cancelled by the broker
          let body: unknown;
          try {
            body = JSON.parse(msg.content.toString('utf8'));
          } catch {
            body = undefined;
          }
          const problem = stepMessageProblem(body);
          if (problem) return this.deadLetter({ stepId: '', queue: this.name(queue), channel: ch, msg }, `not a step message: ${problem}`);
          const step = body as StepMessage;
          if (tracing.enabled) traceMessageReceived(step.step_id, msg.properties.headers);
          state.held.push({ stepId: step.step_id, queue: this.name(queue), channel: ch, msg });
          this.schedule(state);
        },
        { noAck: false },
      );
      tags.push(consumerTag);
    }
    (ch as unknown as { __weftTags?: string[] }).__weftTags = tags;
    state.channel = ch;
  }

  async depth(queues: string[]): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    await this.connect();
    const conn = this.connection!;
    for (const q of queues) {
      // checkQueue on a missing queue closes the channel, so use a throwaway one.
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      try {
        out[q] = (await ch.checkQueue(this.name(q))).messageCount;
        await ch.close();
      } catch {
        out[q] = 0;
      }
    }
    return out;
  }

  async health(): Promise<BusHealth> {
    try {
      await withTimeout(this.connect(), 5_000, () => new MessagingError('RabbitMQ did not accept a connection within 5 s'));
      if (this.blocked) return { ok: false, backend: 'rabbitmq', detail: `RabbitMQ is blocking publishers: ${this.blocked}` };
      return { ok: true, backend: 'rabbitmq', detail: 'connected' };
    } catch (err) {
      return { ok: false, backend: 'rabbitmq', detail: (err as Error).message };
    }
  }

  /** Delete every queue (and its dead-letter queue) this bus declared: for tests and teardown tooling. */
  async deleteDeclaredQueues(): Promise<void> {
    await this.connect();
    const ch = await this.connection!.createChannel();
    for (const q of this.asserted) {
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.deleteQueue(deadLetterQueue(q)).catch(() => undefined);
    }
    await ch.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.publishing]);
    this.closed = true;
    const conn = this.connection;
    this.connection = undefined;
    this.publisher = undefined;
    // A connection that dies while closing never answers close(): its 'close' event ends the wait instead.
    if (conn) await Promise.race([conn.close().catch(() => undefined), new Promise((r) => conn.once('close', r))]);
  }
}

/** Acknowledge, requeue or reject (dead-letter) a delivery; a channel that is gone means the broker redelivers it anyway. */
function settle(h: Held, how: 'ack' | 'requeue' | 'reject'): void {
  try {
    if (how === 'ack') h.channel.ack(h.msg);
    else h.channel.nack(h.msg, false, how === 'requeue');
  } catch {
    /* channel gone: the broker redelivers it, and the claim drops the duplicate */
  }
}

/** `p`, or the error `timeout()` makes once `ms` have passed (the promise itself is left to settle). */
function withTimeout<T>(p: Promise<T>, ms: number, timeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timeout()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
