"""Hierarchical tree workflow (templates/e2e_tree*).

Handler keys: tree.root (squares context.even_number), tree.square_parent
(squares its single parent), tree.multiply_square (multiplies all parent
results, then squares).
"""
import weft
from _seed_math import even_number, product_of_parents, single_parent, square


@weft.step_handler("tree.root")
def root(step):
    return square(even_number(step))


@weft.step_handler("tree.square_parent")
def square_parent(step):
    return square(single_parent(step))


@weft.step_handler("tree.multiply_square")
def multiply_square(step):
    return square(product_of_parents(step))
