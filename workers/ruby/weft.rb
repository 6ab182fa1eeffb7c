# frozen_string_literal: true

# weft: write workflow step handlers in Ruby.
#
#   require 'weft'
#
#   Weft.handler('orders.total') do |step|
#     step.inputs['lines'].sum { |line| line['price'] }
#   end
#
#   class Charge < Weft::StepHandler
#     handles 'orders.charge'
#     def call(step)
#       raise Weft::PermanentError, 'card declined' if step.context['declined']
#       { 'charged' => true }
#     end
#   end
#
# Raise Weft::PermanentError when retrying cannot help; anything else is
# retried with the step's backoff. Weft.decision([...]) picks downstream steps,
# Weft.batches([...]) fans a step out over cursors. See
# docs/handlers-python-ruby.md.
require 'json'
require_relative 'weft/errors'
require_relative 'weft/step'
require_relative 'weft/registry'
require_relative 'weft/environment'
require_relative 'weft/bridge'
