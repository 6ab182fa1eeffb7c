"""Arithmetic shared by the seed handlers; identical in every language
(handlers/ruby/_seed_math.rb, the TypeScript and native handlers).

Integers travel as JSON numbers up to 2**53-1 and as decimal strings beyond,
so results stay exact; every reader accepts both (weft.to_int)."""
import weft


def square(n):
    return weft.json_int(weft.to_int(n) ** 2)


def single_parent(step):
    """The result of the step's only parent (a handler serving several steps)."""
    deps = step.dependency_results
    if len(deps) != 1:
        raise weft.PermanentError(
            f"step {step.step_name} expects exactly one parent result, got {len(deps)}: {sorted(deps)}"
        )
    return next(iter(deps.values()))


def even_number(step):
    n = step.context.get("even_number")
    if isinstance(n, bool) or not isinstance(n, int) or n % 2 != 0:
        raise weft.PermanentError(f"context.even_number must be an even integer, got {n!r}")
    return n


def product_of_parents(step):
    if not step.dependency_results:
        raise weft.PermanentError(f"step {step.step_name} has no parent results to multiply")
    p = 1
    for name in sorted(step.dependency_results):
        p *= weft.to_int(step.dependency_results[name])
    return p
