# frozen_string_literal: true

# Diamond workflow: start -> (branch_b, branch_c) -> end.
#
# Handler keys: diamond.start (squares context.even_number), diamond.branch
# (squares its parent), diamond.end (multiplies both branches, then squares).
require_relative '_seed_math'

Weft.handler('diamond.start') { |step| SeedMath.square(SeedMath.even_number(step)) }
Weft.handler('diamond.branch') { |step| SeedMath.square(SeedMath.single_parent(step)) }
Weft.handler('diamond.end') { |step| SeedMath.square(SeedMath.product_of_parents(step)) }
