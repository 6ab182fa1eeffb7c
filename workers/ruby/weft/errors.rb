# frozen_string_literal: true

module Weft
  # Raise to fail the step without retrying it.
  class PermanentError < StandardError; end

  # Raised inside a handler that ran past its timeout. An Exception (not a
  # StandardError), so `rescue => e` in a handler does not swallow it.
  class HandlerTimeout < Exception; end # rubocop:disable Lint/InheritException

  # Raised inside a handler whose task was cancelled while it ran. An
  # Exception like HandlerTimeout, so `rescue => e` does not swallow it; use
  # `ensure` to clean up. The step's outcome is already settled as cancelled.
  class Cancelled < Exception; end # rubocop:disable Lint/InheritException

  # A handler returned something that is not JSON (reported, never retried).
  class InvalidReturn < StandardError; end

  # The step's JSON could not be parsed by Ruby (reported, never retried).
  class UnreadableStep < PermanentError; end

  # No handler is registered under the requested key.
  class HandlerNotFound < StandardError; end
end
