/**
 * Steps around steps that wait (templates/human_approval.yaml, templates/reminder.yaml):
 * the handlers before and after a `wait` step (a person approves) and a `sleep`
 * step (a reminder later). The waiting steps themselves run no handler.
 */
import { decision, defineHandlers, PermanentError } from '../../src/worker/sdk.js';

export const handlers = defineHandlers({
  'waits.request': (step) => {
    const { amount, requester } = step.context ?? {};
    if (typeof amount !== 'number' || !(amount > 0)) throw new PermanentError(`context.amount must be a number > 0, got ${JSON.stringify(amount)}`);
    if (typeof requester !== 'string' || !requester) throw new PermanentError('context.requester must be a non-empty string');
    return { amount, requester, asked_at: new Date().toISOString() };
  },
  // The approval is the wait step's result: the signal's payload, or its on_timeout result.
  'waits.route': (step) => {
    const approval = step.dependency_results.manager_approval as { approved?: boolean } | undefined;
    return decision(approval?.approved === true ? ['fulfil'] : ['notify_rejected']);
  },
  'waits.fulfil': () => ({ fulfilled: true }),
  'waits.notify_rejected': () => ({ fulfilled: false, notified: true }),
  // The reminder's time is part of this step's result; the sleep step after it reads it (until: send_invoice.remind_at).
  'waits.send_invoice': (step) => {
    const after = step.context?.remind_after_seconds ?? 2;
    if (typeof after !== 'number' || after < 0) throw new PermanentError(`context.remind_after_seconds must be a number >= 0, got ${JSON.stringify(after)}`);
    return { invoice: `INV-${String(step.context?.order ?? 1)}`, remind_at: new Date(Date.now() + after * 1000).toISOString() };
  },
  'waits.remind': (step) => {
    const invoice = step.dependency_results.send_invoice as { invoice?: string } | undefined;
    const slept = step.dependency_results.wait_for_payment as { slept_until?: string } | undefined;
    return { reminded: invoice?.invoice ?? null, at: new Date().toISOString(), slept_until: slept?.slept_until ?? null };
  },
});
