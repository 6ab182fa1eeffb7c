/**
 * Conditional approval: validate → route (a decision) → auto / manager /
 * manager + finance → finalize (deferred convergence over the branches that ran).
 */
import { decision, defineHandlers, PermanentError } from '../../src/worker/sdk.js';

export const handlers = defineHandlers({
  'approval.validate': (step) => {
    const { amount, requester, purpose } = step.context ?? {};
    if (typeof amount !== 'number' || !(amount > 0)) throw new PermanentError(`context.amount must be a number > 0, got ${JSON.stringify(amount)}`);
    if (typeof requester !== 'string' || !requester) throw new PermanentError('context.requester must be a non-empty string');
    if (typeof purpose !== 'string' || !purpose) throw new PermanentError('context.purpose must be a non-empty string');
    return { amount, requester, purpose, validated: true };
  },
  'approval.route': (step) => {
    const amount = step.dependency_results.validate_request?.amount as number;
    if (amount < 1000) return decision(['auto_approve']);
    if (amount < 5000) return decision(['manager_approval']);
    return decision(['manager_approval', 'finance_review']);
  },
  'approval.auto_approve': () => ({ approved: true, approver: 'system', rule: 'amount < 1000' }),
  'approval.manager_approval': () => ({ approved: true, approver: 'manager', rule: 'amount < 5000 or needs finance too' }),
  'approval.finance_review': () => ({ approved: true, approver: 'finance', rule: 'amount >= 5000' }),
  'approval.finalize': (step) => {
    const approvals = Object.entries(step.dependency_results).sort(([a], [b]) => a.localeCompare(b));
    return {
      approved: approvals.length > 0 && approvals.every(([, r]) => (r as { approved?: boolean }).approved === true),
      approvals: approvals.map(([name]) => name),
    };
  },
});
