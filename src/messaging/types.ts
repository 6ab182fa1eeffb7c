/**
 * One messaging interface, one implementation per backend (pg.ts,
 * rabbitmq.ts); nothing above this layer knows which one it talks to.
 *
 * Messages carry ids only ({task_id, step_id}); PostgreSQL holds the data
 * and the truth. A message is a prompt to look, so a duplicate is harmless
 * (the claim is a compare-and-set) and a lost one is recovered by the
 * orchestrator's sweeps.
 */
export interface OutgoingMessage {
  queue: string;
  body: unknown;
}

export interface Delivery {
  queue: string;
  body: unknown;
  /** How many times this message has been delivered, this time included (RabbitMQ: 1, or 2 when redelivered). */
  deliveries: number;
  /** Done with it: remove it from the queue. */
  ack(): void;
  /** Give it back (`requeue`) or dead-letter it, with a reason for the log and the dead-letter record. */
  nack(requeue: boolean, reason: string): void;
}

export interface Subscription {
  /** Stop taking new messages; deliveries already handed out stay valid. */
  stop(): Promise<void>;
}

export interface ConsumeOptions {
  /** Most unacknowledged deliveries outstanding at once. */
  prefetch: number;
}

export interface BusHealth {
  ok: boolean;
  backend: string;
  detail: string;
}

export interface MessageBus {
  readonly backend: 'pg' | 'rabbitmq';
  /**
   * True when messages are written by the SQL statement that commits the
   * state change (the PostgreSQL queue): the store does it, with `outbox`
   * set, and `publish` is not needed for them. False for a broker: publish
   * after COMMIT (state before message).
   */
  readonly transactionalOutbox: boolean;
  publish(messages: OutgoingMessage[]): Promise<void>;
  /**
   * Transactional outbox only: messages to these queues were just committed
   * by a state-changing statement; wake their consumers. Never throws; a lost
   * wake-up only delays delivery to the fallback poll.
   */
  published(queues: string[]): void;
  consume(queues: string[], onMessage: (d: Delivery) => void, options: ConsumeOptions): Promise<Subscription>;
  /** Periodic housekeeping the backend needs, if any (the PostgreSQL queue vacuums its table). */
  maintain?(): Promise<void>;
  /** Messages waiting in each queue (for metrics and backpressure). */
  depth(queues: string[]): Promise<Record<string, number>>;
  health(): Promise<BusHealth>;
  close(): Promise<void>;
}

/** Raised when a message cannot be delivered to the backend; says which and why. */
export class MessagingError extends Error {
  override name = 'MessagingError';
}
