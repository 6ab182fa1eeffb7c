# frozen_string_literal: true

module Weft
  # Called by the native bridge only (native/ruby/ruby-runtime.cc).
  module Bridge
    JSON_TYPES = 'return Hashes, Arrays, Strings, Numbers, true/false or nil'
    # The step puts two levels above a value weft stored (at most
    # MAX_JSON_DEPTH deep): the step object, then dependency_results (a
    # parent's result) or batch (its cursor) or context's own object.
    # JSON.parse's default of 100 would do today; this says why it must not
    # fall below 66.
    PARSE_MAX_NESTING = MAX_JSON_DEPTH + 2

    module_function

    # Loads every *.rb under +dirs+ and returns the registered handler keys.
    # +setup+: JSON from the worker's settings; "gemfile" names the Gemfile
    # whose gems the handlers use (environment.rb).
    def load_handlers(dirs, setup = '{}')
      gemfile = JSON.parse(setup)['gemfile']
      Environment.use_gemfile(gemfile) if gemfile
      dirs.each do |dir|
        raise LoadError, "handlers directory #{dir.inspect} does not exist" unless File.directory?(dir)

        $LOAD_PATH.push(dir) unless $LOAD_PATH.include?(dir)
        Dir.glob(File.join(dir, '**', '*.rb')).sort.each do |path|
          next if File.basename(path).start_with?('_')

          load_file(File.expand_path(path), gemfile)
        end
      end
      Weft.handlers
    end

    # Requires one handler file. A failure keeps its class and backtrace, but
    # its message is led by the file and line where it was raised (a
    # SyntaxError's message names them already). A LoadError (a library that
    # is not there) also says where Ruby looked.
    def load_file(path, gemfile = nil)
      require path
    rescue SyntaxError
      raise
    rescue Exception => e # rubocop:disable Lint/RescueException - re-raised, with its place in the message
      where = (e.backtrace_locations || []).find { |l| l.absolute_path && !l.absolute_path.start_with?(__dir__) }
      where = where ? "#{where.absolute_path}:#{where.lineno}" : path
      loading = where.start_with?("#{path}:") ? '' : " (while loading #{path})"
      hint = e.is_a?(LoadError) ? Environment.missing_library_hint(e, gemfile) : ''
      raise e.exception("#{where}: #{e.message}#{loading}#{hint}")
    end

    # Runs one step: +payload+ is the step's JSON, the result is JSON.
    def invoke(key, payload)
      entry = REGISTRY[key]
      unless entry
        known = Weft.handlers.join(', ')
        raise HandlerNotFound, "no Ruby handler is registered as \"#{key}\"; known handlers: #{known.empty? ? '(none)' : known}"
      end
      result = entry[0].call(Step.new(parse_step(payload)))
      strict_generate(key, result)
    end

    # The step, parsed. JSON that Ruby's parser refuses (nesting past
    # PARSE_MAX_NESTING; some lone UTF-16 surrogates, e.g. "\udc00\ud800")
    # fails for good: no retry reads it better. weft itself stores no such
    # values (the API refuses the one, jsonb the other).
    def parse_step(payload)
      # json 2.6 reads a lone high surrogate as '?' or merges it with the next
      # escape ("\ud800\u0000" became U+10000): refuse rather than hand the
      # handler changed data. JSON.stringify escapes little, so a step without
      # any \u escape (nearly all of them) skips the scan.
      if payload.include?('\\u') && lone_surrogate?(payload)
        raise UnreadableStep, 'this step holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair), which ' \
                              "Ruby's JSON parser would read wrongly; weft never stores such values"
      end
      JSON.parse(payload, max_nesting: PARSE_MAX_NESTING)
    rescue JSON::ParserError => e
      raise UnreadableStep, "Ruby's JSON parser cannot read this step (#{e.class}: #{e.message[0, 200]}); it holds a value " \
                            "weft does not store (nested deeper than #{MAX_JSON_DEPTH} levels, or a lone UTF-16 surrogate)"
    end

    # A \uXXXX surrogate escape (not an escaped backslash before "u"), with
    # the run of escaped backslashes before it.
    SURROGATE_ESCAPE = /(?<!\\)((?:\\\\)*)\\u([dD][89a-fA-F][0-9a-fA-F]{2})/

    # Whether the JSON text has a surrogate escape that is not half of a
    # high-then-low pair.
    def lone_surrogate?(text)
      high_end = nil # where the last unpaired high surrogate's escape ended
      text.scan(SURROGATE_ESCAPE) do
        m = Regexp.last_match
        start = m.begin(0) + m[1].length
        if m[2].to_i(16) < 0xDC00
          return true if high_end

          high_end = m.end(0)
        else
          return true unless high_end == start

          high_end = nil
        end
      end
      !high_end.nil?
    end

    # JSON.generate, except that a value JSON has no type for raises
    # InvalidReturn instead of being silently turned into its to_s. The json
    # C generator writes Hash/Array/String/Integer/Float/nil/true/false
    # itself and calls #to_json only for anything else, which StrictToJson
    # intercepts while the flag is set. (A Ruby-level walk of every value cost
    # ~1 ms for a 20 KB result; this costs nothing on the valid path.)
    def strict_generate(key, result)
      Thread.current[:weft_strict_json] = true
      JSON.generate(result, max_nesting: MAX_JSON_DEPTH)
    rescue JSON::NestingError
      # (a NestingError is not a GeneratorError: it would escape as a retryable raise)
      raise InvalidReturn, "handler \"#{key}\" returned a result that nests deeper than #{MAX_JSON_DEPTH} levels at " \
                           "#{too_deep_path(result)}; flatten it (weft keeps every JSON value within #{MAX_JSON_DEPTH} levels)"
    rescue NotJson, JSON::GeneratorError
      where, what = find_bad(result, 'value') || ['value', result.class.name]
      detail = where == 'value' ? '' : " at #{where}"
      raise InvalidReturn, "handler \"#{key}\" returned #{article(what)} #{what}#{detail}, which is not JSON; #{JSON_TYPES}"
    ensure
      Thread.current[:weft_strict_json] = false
    end

    # Raised inside JSON.generate by StrictToJson; never escapes strict_generate.
    class NotJson < StandardError; end

    # Prepended to Object: see strict_generate.
    module StrictToJson
      def to_json(*args)
        if Thread.current[:weft_strict_json] && !is_a?(Hash) && !is_a?(Array) && !is_a?(String) && !is_a?(Integer) && !is_a?(Float)
          raise NotJson
        end

        super
      end
    end
    Object.prepend(StrictToJson)

    # JSONPath (`$.a[0]`, as weft writes it) of the first container deeper
    # than MAX_JSON_DEPTH, walked without recursion.
    def too_deep_path(root)
      stack = [[root, '$', 0]]
      until stack.empty?
        value, path, depth = stack.pop
        next unless value.is_a?(Hash) || value.is_a?(Array)
        return path if depth + 1 > MAX_JSON_DEPTH

        children = value.is_a?(Array) ? value.each_with_index.map { |v, i| [v, "#{path}[#{i}]"] } : value.map { |k, v| [v, path + path_key(k.to_s)] }
        children.reverse_each { |v, p| stack.push([v, p, depth + 1]) }
      end
      '$'
    end

    def path_key(key)
      key.match?(/\A[A-Za-z_$][\w$]*\z/) ? ".#{key}" : "[#{JSON.generate(key)}]"
    end

    def utf8?(string)
      string.encode(Encoding::UTF_8).valid_encoding?
    rescue EncodingError
      false
    end

    def article(word)
      word.match?(/\A[AEIOUaeiou]/) ? 'an' : 'a'
    end

    # The first non-JSON value inside +value+, as [path, class name]; nil when all is JSON.
    def find_bad(value, path)
      case value
      when nil, true, false, Integer then nil
      when String then utf8?(value) ? nil : [path, 'String that is not valid UTF-8 (a lone surrogate, or binary bytes)']
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
