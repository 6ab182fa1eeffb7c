# frozen_string_literal: true

module Weft
  MAX_SAFE_INTEGER = (2**53) - 1
  # weft's one limit on JSON nesting (src/core/json-depth.ts): `[]` and `{}`
  # are one level. Values weft stores and hands to handlers stay within it.
  MAX_JSON_DEPTH = 64
  REGISTRY = {} # key => [callable, origin]

  module_function

  # Register a block as the handler for +key+.
  def handler(key, &block)
    raise ArgumentError, "Weft.handler(#{key.inspect}) needs a block" unless block

    loc = block.source_location
    register(key, block, "block at #{loc&.join(':')}")
  end

  def register(key, callable, origin)
    raise TypeError, "handler key must be a non-empty String, got #{key.inspect}" unless key.is_a?(String) && !key.empty?

    if REGISTRY.key?(key) && REGISTRY[key][1] != origin
      raise ArgumentError, "handler key #{key.inspect} is registered twice: by #{REGISTRY[key][1]} and by #{origin}"
    end

    REGISTRY[key] = [callable, origin]
  end

  # The registered handler keys, sorted.
  def handlers
    REGISTRY.keys.sort
  end

  # Return from a decision step: run only these downstream steps (by name).
  def decision(steps)
    steps = steps.to_a
    steps.each { |s| raise TypeError, "Weft.decision takes step names (Strings), got #{s.class}" unless s.is_a?(String) }
    { '$weft' => 'decision', 'steps' => steps }
  end

  # Return from a batchable step: run the batch worker once per cursor.
  def batches(cursors)
    { '$weft' => 'batches', 'cursors' => cursors.to_a }
  end

  # An Integer as JSON can carry it exactly: a number up to 2**53-1, else a decimal String.
  def json_int(n)
    n = Integer(n)
    n.abs <= MAX_SAFE_INTEGER ? n : n.to_s
  end

  # Read an integer result written by any language: a JSON number or a decimal String.
  def to_int(value)
    case value
    when Integer then value
    when Float
      raise TypeError, "expected an integer, got #{value}" unless value.finite? && value == value.floor

      value.to_i
    when String then Integer(value, 10)
    else raise TypeError, "expected an integer or a decimal string, got #{value.class} #{value.inspect}"
    end
  end
end
