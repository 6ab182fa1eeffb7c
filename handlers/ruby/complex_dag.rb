# frozen_string_literal: true

# Complex DAG workflow (templates/e2e_complex*).
#
# Handler keys: complex.init (squares context.even_number),
# complex.square_parent (squares its single parent), complex.multiply_square
# (multiplies all parent results, then squares).
require_relative '_seed_math'

Weft.handler('complex.init') { |step| SeedMath.square(SeedMath.even_number(step)) }
Weft.handler('complex.square_parent') { |step| SeedMath.square(SeedMath.single_parent(step)) }
Weft.handler('complex.multiply_square') { |step| SeedMath.square(SeedMath.product_of_parents(step)) }
