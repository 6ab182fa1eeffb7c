# frozen_string_literal: true

# Hierarchical tree workflow (templates/e2e_tree*).
#
# Handler keys: tree.root (squares context.even_number), tree.square_parent
# (squares its single parent), tree.multiply_square (multiplies all parent
# results, then squares).
require_relative '_seed_math'

Weft.handler('tree.root') { |step| SeedMath.square(SeedMath.even_number(step)) }
Weft.handler('tree.square_parent') { |step| SeedMath.square(SeedMath.single_parent(step)) }
Weft.handler('tree.multiply_square') { |step| SeedMath.square(SeedMath.product_of_parents(step)) }
