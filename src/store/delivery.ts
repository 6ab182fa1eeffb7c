/**
 * How the statements that make steps ready hand them to the message bus:
 *   - 'wake': the steps table is the queue (the PostgreSQL bus); a statement
 *     may claim ready steps of its caller's queues itself, and the bus wakes
 *     waiting consumers after COMMIT;
 *   - 'outbox': the statement writes a message per ready step to weft.outbox
 *     (a broker), which the bus publishes after COMMIT.
 *
 * Each bus has one `Delivery` (`MessageBus.delivery`). The worker and the
 * orchestrator hand it to the store unopened: only this module reads it, so
 * a new fact the store needs from the bus is added here and in the buses,
 * and no caller changes.
 */

/** The names of the two ways (for a bus to say which it uses). */
export type DispatchMode = 'wake' | 'outbox';

const MODE = Symbol('weft.delivery.mode');

/** Opaque: made by {@link deliveryFor}, read by the store. */
export interface Delivery {
  readonly [MODE]: DispatchMode;
}

const DELIVERIES: Record<DispatchMode, Delivery> = {
  wake: Object.freeze({ [MODE]: 'wake' as const }),
  outbox: Object.freeze({ [MODE]: 'outbox' as const }),
};

/** The delivery of a bus that hands steps over this way. */
export function deliveryFor(mode: DispatchMode): Delivery {
  return DELIVERIES[mode];
}

/**
 * What a store function accepts: a bus's delivery, or the way named directly
 * (tests and tools that drive the store without a bus).
 */
export type DeliveryOrMode = Delivery | DispatchMode;

function modeOf(d: DeliveryOrMode): DispatchMode {
  return typeof d === 'string' ? d : d[MODE];
}

/** Statements write outbox rows for the steps they make ready (a broker publishes them). */
export function writesOutbox(d: DeliveryOrMode): boolean {
  return modeOf(d) === 'outbox';
}

/** A finish may also claim ready steps waiting in its worker's queues (the steps table is the queue). */
export function claimsQueued(d: DeliveryOrMode): boolean {
  return modeOf(d) === 'wake';
}
