# frozen_string_literal: true

module Weft
  # What a handler gets: one attempt of one step of one task.
  class Step
    attr_reader :task_id, :step_id, :step_name, :attempt, :context, :inputs, :dependency_results, :batch,
                # W3C trace context of this run when weft traces (docs/tracing.md), else nil.
                :traceparent

    def initialize(data)
      @task_id = data['task_id']
      @step_id = data['step_id']
      @step_name = data['step_name']
      @attempt = data['attempt'] || 1
      @context = data['context'] || {}
      @inputs = data['inputs'] || {}
      @dependency_results = data['dependency_results'] || {}
      @batch = data['batch']
      @traceparent = data['traceparent']
    end

    def inspect
      "#<Weft::Step #{@step_name.inspect} attempt=#{@attempt}>"
    end
  end

  # Base class for class-style handlers:
  #
  #   class Square < Weft::StepHandler
  #     handles 'math.square'
  #     def call(step) = step.context['n']**2
  #   end
  #
  # One instance is created at registration and reused for every call.
  class StepHandler
    def self.handles(*keys)
      keys.each { |key| Weft.register(key, new, "class #{name}") }
    end

    def call(_step)
      raise NotImplementedError, "#{self.class.name}#call(step) is not implemented"
    end
  end
end
