"""Diamond workflow: start -> (branch_b, branch_c) -> end.

Handler keys: diamond.start (squares context.even_number), diamond.branch
(squares its parent), diamond.end (multiplies both branches, then squares).
6 -> 36 -> 1296, 1296 -> (1296*1296)^2 = 2821109907456.
"""
import weft
from _seed_math import even_number, product_of_parents, single_parent, square


@weft.step_handler("diamond.start")
def start(step):
    return square(even_number(step))


@weft.step_handler("diamond.branch")
def branch(step):
    return square(single_parent(step))


@weft.step_handler("diamond.end")
def end(step):
    return square(product_of_parents(step))
