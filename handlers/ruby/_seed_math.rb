# frozen_string_literal: true

# Arithmetic shared by the seed handlers; identical in every language
# (handlers/python/_seed_math.py, the TypeScript and native handlers).
# Integers travel as JSON numbers up to 2**53-1 and as decimal strings beyond,
# so results stay exact; every reader accepts both (Weft.to_int).
module SeedMath
  module_function

  def square(n)
    Weft.json_int(Weft.to_int(n)**2)
  end

  # The result of the step's only parent (a handler serving several steps).
  def single_parent(step)
    deps = step.dependency_results
    unless deps.size == 1
      raise Weft::PermanentError, "step #{step.step_name} expects exactly one parent result, got #{deps.size}: #{deps.keys.sort}"
    end

    deps.values.first
  end

  def even_number(step)
    n = step.context['even_number']
    raise Weft::PermanentError, "context.even_number must be an even integer, got #{n.inspect}" unless n.is_a?(Integer) && n.even?

    n
  end

  def product_of_parents(step)
    deps = step.dependency_results
    raise Weft::PermanentError, "step #{step.step_name} has no parent results to multiply" if deps.empty?

    deps.keys.sort.reduce(1) { |p, name| p * Weft.to_int(deps[name]) }
  end
end
