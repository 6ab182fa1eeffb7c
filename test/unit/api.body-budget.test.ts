import { describe, expect, it } from 'vitest';
import { BodyBudget } from '../../src/api/limits.js';

describe('BodyBudget', () => {
  it('grants bytes while they fit, queues the rest in order, and hands freed bytes to the first in line', async () => {
    const budget = new BodyBudget(100, 60_000);
    const first = (await budget.take(60))!;
    const order: string[] = [];
    const second = budget.take(50).then((r) => (order.push('second'), r!));
    const third = budget.take(10).then((r) => (order.push('third'), r!));
    first();
    first(); // twice: counted once
    (await second)();
    (await third)();
    expect(order).toEqual(['second', 'third']);
    expect(await budget.take(100)).toBeTypeOf('function');
  });

  it('answers undefined to a request that waited its time, and lets the next one in', async () => {
    const budget = new BodyBudget(10, 20);
    const held = (await budget.take(10))!;
    expect(await budget.take(5)).toBeUndefined();
    held();
    expect(await budget.take(10)).toBeTypeOf('function');
  });

  it('counts a body larger than the whole budget as the whole budget', async () => {
    const budget = new BodyBudget(10, 20);
    const all = (await budget.take(1_000))!;
    expect(await budget.take(1)).toBeUndefined();
    all();
    expect(await budget.take(1)).toBeTypeOf('function');
  });
});
