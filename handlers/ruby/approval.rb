# frozen_string_literal: true

# Conditional approval workflow (templates/e2e_approval*).
#
# Handler keys: approval.validate, approval.route (decision step),
# approval.auto_approve, approval.manager_approval, approval.finance_review,
# approval.finalize.
#
# route: amount < 1000 -> ["auto_approve"]; < 5000 -> ["manager_approval"];
# otherwise ["manager_approval", "finance_review"] (step names).
module Approval
  module_function

  def amount(step)
    a = step.context['amount']
    raise Weft::PermanentError, "context.amount must be a non-negative number, got #{a.inspect}" unless a.is_a?(Numeric) && a >= 0

    a
  end
end

Weft.handler('approval.validate') { |step| { 'valid' => true, 'amount' => Approval.amount(step) } }

Weft.handler('approval.route') do |step|
  amount = Approval.amount(step)
  if amount < 1000
    Weft.decision(['auto_approve'])
  elsif amount < 5000
    Weft.decision(['manager_approval'])
  else
    Weft.decision(%w[manager_approval finance_review])
  end
end

Weft.handler('approval.auto_approve') { |step| { 'approved' => true, 'by' => 'auto', 'amount' => Approval.amount(step) } }
Weft.handler('approval.manager_approval') { |step| { 'approved' => true, 'by' => 'manager', 'amount' => Approval.amount(step) } }
Weft.handler('approval.finance_review') { |step| { 'approved' => true, 'by' => 'finance', 'amount' => Approval.amount(step) } }

Weft.handler('approval.finalize') do |step|
  approvals = step.dependency_results.values.select { |r| r.is_a?(Hash) && r.key?('approved') }
  {
    'approved' => !approvals.empty? && approvals.all? { |r| r['approved'] },
    'approvals' => approvals.map { |r| r['by'] }.sort,
    'amount' => Approval.amount(step)
  }
end
