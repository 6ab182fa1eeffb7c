# frozen_string_literal: true

# Linear workflow: linear_step_1 -> 2 -> 3 -> 4, each squaring its parent.
#
# Handler keys: linear.square (all four steps; step 1 squares
# context.even_number because it has no parent). 6 -> 36 -> 1296 -> 1679616 ->
# 2821109907456.
require_relative '_seed_math'

Weft.handler('linear.square') do |step|
  if step.dependency_results.empty?
    SeedMath.square(SeedMath.even_number(step))
  else
    SeedMath.square(SeedMath.single_parent(step))
  end
end
