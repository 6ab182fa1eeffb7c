/**
 * One messaging interface, one implementation per backend (pg.ts,
 * rabbitmq.ts); nothing above this layer knows which one it talks to.
 *
 * PostgreSQL holds the data and the truth. A step is dispatched by the same
 * statement that makes it ready; the bus only gets it to a worker:
 *   - the PostgreSQL queue (pg.ts): the steps table is the queue. A worker
 *     claims ready steps of its queues directly, and a statement that makes
 *     steps ready wakes one waiting consumer per step (after COMMIT).
 *   - RabbitMQ (rabbitmq.ts): the statement writes a message per ready step to
 *     weft.outbox; after COMMIT the bus publishes them (with confirms) and
 *     deletes them. A message names a step; the worker claims it by id.
 * A message is a prompt to look, so a duplicate is harmless (the claim is a
 * compare-and-set) and a lost one is repaired by a sweep.
 */
import type { MessagingBackend } from '../shared/backends.js';
import { WeftError } from '../shared/errors.js';
import type { ClaimedStep, Dispatch, OutboxMessage } from '../store/events.js';
import type { Notice } from '../store/dispatch.js';
import type { Delivery } from '../store/delivery.js';
import type { WaiterRegistration } from '../store/claim.js';

/** What a bus needs from the worker it feeds. */
export interface StepConsumer {
  /** Free slots right now. */
  room(): number;
  /**
   * PostgreSQL queue: claim (and start) up to `room` ready steps of the
   * consumer's queues; a short claim registers `waiter`. Returns how many were claimed.
   */
  claimQueued(room: number, waiter: WaiterRegistration): Promise<number>;
  /** Broker: claim (and start) the steps these messages name; resolves once the claim committed. */
  claimDelivered(stepIds: string[]): Promise<void>;
  /**
   * Claims made for this consumer by another statement of its process (a
   * task's creation: see MessageBus.claimLocally), for a consumer that takes
   * them: its worker id, `reserve` takes up to `n` of its free slots (returns
   * how many), `adopt` starts what the statement claimed and frees the rest
   * of the reservation.
   */
  readonly workerId?: string;
  reserve?(n: number): number;
  adopt?(claimed: ClaimedStep[], reserved: number): void;
}

/** Free slots of a consumer of this process, reserved for a statement that claims for it (MessageBus.claimLocally). */
export interface LocalClaim {
  readonly worker: string;
  /** The queues the consumer serves. */
  readonly queues: readonly string[];
  /** Slots reserved: claim at most this many. */
  readonly limit: number;
  /** After the statement: start what it claimed (nothing if it failed) and free the rest. Call exactly once. */
  settle(claimed: ClaimedStep[]): void;
}

export interface Subscription {
  /** PostgreSQL queue: the consumer's waiter registration, which its finishes renew too. */
  readonly waiter?: WaiterRegistration;
  /** The consumer has free slots again (a broker consumer claims what it holds back). */
  poke(): void;
  /** Stop taking new work; what was handed out stays valid. */
  stop(): Promise<void>;
}

export interface ConsumeOptions {
  /** Most steps handed to the consumer at once (its concurrency). */
  prefetch: number;
}

export interface BusHealth {
  ok: boolean;
  backend: string;
  detail: string;
}

export interface MessageBus {
  readonly backend: MessagingBackend;
  /**
   * How statements that enqueue steps hand them over (woken consumers, or
   * outbox rows that `deliver` publishes): pass it to the store unopened
   * (src/store/delivery.ts).
   */
  readonly delivery: Delivery;
  /**
   * After the COMMIT of a statement that enqueued steps: get them to workers
   * (wake consumers, or publish and delete the outbox messages), and send
   * `notices`. Never throws; what fails here is repaired by polls and sweeps.
   */
  deliver(dispatch: Dispatch, notices?: Notice[]): void;
  /**
   * Publish outbox messages a crash left behind, then delete them (the
   * outbox sweep). `timeoutMs` bounds the wait for the broker's confirms
   * (default: the bus's publish timeout, 10 s).
   */
  republish(messages: OutboxMessage[], options?: { timeoutMs?: number }): Promise<void>;
  consume(queues: string[], consumer: StepConsumer, options: ConsumeOptions): Promise<Subscription>;
  /**
   * PostgreSQL queue, with a worker in this process consuming one of
   * `queues` and free slots: reserve up to `want` of them for a statement
   * that claims for it (the create of a task, so its first steps start with
   * no second commit and no wake-up). Undefined when there is no such
   * consumer, or the bus hands steps over otherwise (a broker).
   */
  claimLocally?(queues: readonly string[], want: number): LocalClaim | undefined;
  /** Ready steps (or messages) waiting in each queue, for metrics. */
  depth(queues: string[]): Promise<Record<string, number>>;
  health(): Promise<BusHealth>;
  /** Wait for deliveries in progress, then let go of connections. */
  close(): Promise<void>;
}

/** Raised when a message cannot be delivered to the backend; says which and why. */
export class MessagingError extends WeftError {
  override name = 'MessagingError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('messaging_unavailable', message, options);
  }
}
