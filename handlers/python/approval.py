"""Conditional approval workflow (templates/e2e_approval*).

Handler keys: approval.validate, approval.route (decision step),
approval.auto_approve, approval.manager_approval, approval.finance_review,
approval.finalize.

route: amount < 1000 -> ["auto_approve"]; < 5000 -> ["manager_approval"];
otherwise ["manager_approval", "finance_review"] (step names).
"""
import weft


def _amount(step):
    amount = step.context.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
        raise weft.PermanentError(f"context.amount must be a non-negative number, got {amount!r}")
    return amount


@weft.step_handler("approval.validate")
def validate(step):
    return {"valid": True, "amount": _amount(step)}


@weft.step_handler("approval.route")
def route(step):
    amount = _amount(step)
    if amount < 1000:
        return weft.decision(["auto_approve"])
    if amount < 5000:
        return weft.decision(["manager_approval"])
    return weft.decision(["manager_approval", "finance_review"])


@weft.step_handler("approval.auto_approve")
def auto_approve(step):
    return {"approved": True, "by": "auto", "amount": _amount(step)}


@weft.step_handler("approval.manager_approval")
def manager_approval(step):
    return {"approved": True, "by": "manager", "amount": _amount(step)}


@weft.step_handler("approval.finance_review")
def finance_review(step):
    return {"approved": True, "by": "finance", "amount": _amount(step)}


@weft.step_handler("approval.finalize")
def finalize(step):
    approvals = [r for r in step.dependency_results.values() if isinstance(r, dict) and "approved" in r]
    by = sorted(r["by"] for r in approvals)
    return {"approved": bool(approvals) and all(r["approved"] for r in approvals), "approvals": by, "amount": _amount(step)}
