/**
 * An order flow and the payment sub-flow it runs as a child workflow
 * (templates/order_flow.yaml, templates/charge_card.yaml). The workflow step
 * between them runs no handler: `ship` reads the child's results through it.
 */
import { defineHandlers, PermanentError } from '../../src/worker/sdk.js';

interface Item {
  sku: string;
  price: number;
  qty: number;
}

export const handlers = defineHandlers({
  'shop.price_order': (step) => {
    const items = (step.context?.items ?? []) as Item[];
    const total = Math.round(items.reduce((sum, i) => sum + i.price * i.qty, 0) * 100) / 100;
    return { total, lines: items.length };
  },
  'shop.authorize': (step) => {
    const { card_token, amount } = step.context as { card_token: string; amount: number };
    if (card_token === 'tok_declined') throw new PermanentError(`card ${card_token} was declined for ${amount}`);
    return { authorization: `auth_${card_token}_${Math.round(amount * 100)}` };
  },
  'shop.capture': (step) => {
    const { order_id, amount, currency } = step.context as { order_id: string; amount: number; currency?: string };
    const auth = step.dependency_results.authorize as { authorization: string };
    return { charge_id: `ch_${order_id}`, amount, currency: currency ?? 'EUR', authorization: auth.authorization };
  },
  'shop.ship': (step) => {
    const charge = step.dependency_results.charge as { task_id: string; results: { capture: { charge_id: string } } };
    return { shipped: true, order_id: step.context?.order_id, charge_id: charge.results.capture.charge_id, payment_task: charge.task_id };
  },
});
