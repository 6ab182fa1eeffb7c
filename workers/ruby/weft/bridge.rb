# frozen_string_literal: true

module Weft
  # Called by the native bridge only (native/ruby/ruby-runtime.cc).
  module Bridge
    JSON_TYPES = 'return Hashes, Arrays, Strings, Numbers, true/false or nil'

    module_function

    # Loads every *.rb under +dirs+ and returns the registered handler keys.
    def load_handlers(dirs)
      dirs.each do |dir|
        raise LoadError, "handlers directory #{dir.inspect} does not exist" unless File.directory?(dir)

        $LOAD_PATH.push(dir) unless $LOAD_PATH.include?(dir)
        Dir.glob(File.join(dir, '**', '*.rb')).sort.each do |path|
          next if File.basename(path).start_with?('_')

          require File.expand_path(path)
        end
      end
      Weft.handlers
    end

    # Runs one step: +payload+ is the step's JSON, the result is JSON.
    def invoke(key, payload)
      entry = REGISTRY[key]
      unless entry
        known = Weft.handlers.join(', ')
        raise HandlerNotFound, "no Ruby handler is registered as \"#{key}\"; known handlers: #{known.empty? ? '(none)' : known}"
      end
      result = entry[0].call(Step.new(JSON.parse(payload)))
      bad = find_bad(result, 'value')
      if bad
        where, what = bad
        detail = where == 'value' ? '' : " at #{where}"
        raise InvalidReturn, "handler \"#{key}\" returned #{article(what)} #{what}#{detail}, which is not JSON; #{JSON_TYPES}"
      end
      JSON.generate(result)
    end

    def article(word)
      word.match?(/\A[AEIOUaeiou]/) ? 'an' : 'a'
    end

    # The first non-JSON value inside +value+, as [path, class name]; nil when all is JSON.
    def find_bad(value, path)
      case value
      when nil, true, false, String, Integer then nil
      when Float then value.finite? ? nil : [path, "Float #{value}"]
      when Array
        value.each_with_index do |v, i|
          bad = find_bad(v, "#{path}[#{i}]")
          return bad if bad
        end
        nil
      when Hash
        value.each do |k, v|
          return ["#{path} key #{k.inspect}", "#{k.class} key"] unless k.is_a?(String) || k.is_a?(Symbol)

          bad = find_bad(v, "#{path}[#{k.inspect}]")
          return bad if bad
        end
        nil
      else [path, value.class.name || value.class.inspect]
      end
    end
  end
end
