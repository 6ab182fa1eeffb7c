"""Complex DAG workflow (templates/e2e_complex*).

Handler keys: complex.init (squares context.even_number),
complex.square_parent (squares its single parent), complex.multiply_square
(multiplies all parent results, then squares).
"""
import weft
from _seed_math import even_number, product_of_parents, single_parent, square


@weft.step_handler("complex.init")
def init(step):
    return square(even_number(step))


@weft.step_handler("complex.square_parent")
def square_parent(step):
    return square(single_parent(step))


@weft.step_handler("complex.multiply_square")
def multiply_square(step):
    return square(product_of_parents(step))
