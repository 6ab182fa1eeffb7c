"""Linear workflow: linear_step_1 -> 2 -> 3 -> 4, each squaring its parent.

Handler keys: linear.square (all four steps; step 1 squares
context.even_number because it has no parent). 6 -> 36 -> 1296 -> 1679616 ->
2821109907456.
"""
import weft
from _seed_math import even_number, single_parent, square


@weft.step_handler("linear.square")
def linear_square(step):
    if not step.dependency_results:
        return square(even_number(step))
    return square(single_parent(step))
