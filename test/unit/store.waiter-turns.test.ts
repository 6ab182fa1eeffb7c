/**
 * The turns a PostgreSQL-queue consumer's statements take (src/store/claim.ts):
 * a statement that fills its room may remove only a registration made by one
 * that had come back before it was sent, so `known` never reaches a statement
 * still in flight.
 */
import { describe, expect, it } from 'vitest';
import { WaiterRegistration, waiterParams } from '../../src/store/claim.js';

describe('WaiterRegistration turns', () => {
  it('numbers statements in the order they are sent; alone, a statement knows every earlier one', () => {
    const w = new WaiterRegistration('c1', 'weft_wake_x', 4_000);
    const a = w.turn();
    expect([a.seq, a.known]).toEqual([1, 0]);
    a.done();
    const b = w.turn();
    expect([b.seq, b.known]).toEqual([2, 1]);
  });

  it('a statement sent while others are in flight knows only those below the oldest of them', () => {
    const w = new WaiterRegistration('c1', 'weft_wake_x', 4_000);
    const a = w.turn(); // 1
    const b = w.turn(); // 2, 1 in flight
    expect(b.known).toBe(0);
    b.done();
    const c = w.turn(); // 3: 1 still in flight, 2 came back
    expect(c.known).toBe(0);
    a.done();
    const d = w.turn(); // 4: 3 in flight
    expect(d.known).toBe(2);
    c.done();
    d.done();
    expect(w.turn().known).toBe(4);
  });

  it('done() twice changes nothing', () => {
    const w = new WaiterRegistration('c1', 'weft_wake_x', 4_000);
    const a = w.turn();
    a.done();
    a.done();
    expect(w.turn().known).toBe(1);
  });

  it("the statements' trailing parameters: consumer, channel, ttl, seq, known; without a waiter nothing is registered", () => {
    const w = new WaiterRegistration('c1', 'weft_wake_x', 4_000);
    const t = w.turn();
    expect(waiterParams(w, t)).toEqual(['c1', 'weft_wake_x', 4_000, 1, 0]);
    expect(waiterParams(undefined, undefined)).toEqual([null, null, 0, 0, 0]);
  });
});
