# frozen_string_literal: true

# A small client for weft's HTTP API, for Ruby applications. Standard library
# only (net/http, json), so it needs no gem; docs/client.md shows it at work
# and docs/api.md is the API it speaks.
#
#   require 'weft/client'
#
#   weft = Weft::Client.new # WEFT_ORCHESTRATOR_URL and WEFT_API_TOKEN, or Weft::Client.new(url, token: ...)
#   id = weft.create_task('e2e_linear', 'mathematical_sequence', context: { even_number: 6 })['id']
#   task = weft.wait_for_task(id)
#   puts task['state']
#
# It also starts tasks later (run_at:, delay:), many at once (create_tasks),
# signals wait steps (signal_step), cancels, retries and lists them, and
# manages schedules.
#
# Every error answer raises a subclass of Weft::Client::ApiError carrying the
# server's code, the HTTP status and the whole error body; an orchestrator
# that cannot be reached raises Weft::Client::UnreachableError.
require 'json'
require 'net/http'
require 'time'
require 'uri'

module Weft
  class Client
    # The API answered with an error.
    class ApiError < StandardError
      attr_reader :status, :code, :body, :request

      def initialize(status, body, request)
        @status = status
        @body = body
        @code = body['code']
        @request = request
        super(body['message'])
      end
    end

    # 400 (or 422): the request is wrong; body['path'] names the field.
    class InvalidInputError < ApiError; end
    # 401: no token where one is needed, or an unknown or revoked one.
    class UnauthorizedError < ApiError; end
    # 403: the token lacks the route's scope.
    class ForbiddenError < ApiError; end
    # 404: no such task, step, template or idempotency key.
    class NotFoundError < ApiError; end
    # 409: an idempotency key reused with a different request, or a task whose state forbids the operation.
    class ConflictError < ApiError
      def task_id
        body['task_id']
      end
    end
    # 429: too many requests of this kind this minute.
    class RateLimitedError < ApiError; end
    # 503: the orchestrator is starting, stopping or without its database; repeat later.
    class UnavailableError < ApiError; end
    # The orchestrator could not be reached or did not answer in time.
    class UnreachableError < StandardError; end

    ERRORS = {
      400 => InvalidInputError, 401 => UnauthorizedError, 403 => ForbiddenError, 404 => NotFoundError,
      409 => ConflictError, 422 => InvalidInputError, 429 => RateLimitedError, 503 => UnavailableError
    }.freeze

    # One long-poll asks the server to hold the request at most this long (s),
    # and allows the answer this much longer than that to arrive.
    LONG_POLL_S = 30.0
    LONG_POLL_SLACK_S = 10.0
    # Items per batch request unless told otherwise: the server's default WEFT_TASK_BATCH_LIMIT.
    BATCH_SIZE = 1000
    # create_task's keywords, which are also a batch item's keys.
    TASK_FIELDS = %i[namespace name context version idempotency_key run_at delay].freeze
    # A request without a body (a JSON body may be null: a signal's payload).
    NO_BODY = Object.new.freeze
    private_constant :NO_BODY

    attr_reader :url

    # url defaults to WEFT_ORCHESTRATOR_URL, token to WEFT_API_TOKEN; timeout bounds each request (s).
    def initialize(url = nil, token: nil, timeout: 30.0)
      url ||= ENV.fetch('WEFT_ORCHESTRATOR_URL', nil)
      if url.nil? || url.empty?
        raise ArgumentError, "Weft::Client needs the orchestrator's URL: " \
                             "pass Weft::Client.new('http://127.0.0.1:8080') or set WEFT_ORCHESTRATOR_URL"
      end
      unless url.match?(%r{\Ahttps?://}i)
        raise ArgumentError, "Weft::Client: url #{url.inspect} is not http(s); pass the orchestrator's, e.g. http://127.0.0.1:8080"
      end

      @url = url.sub(%r{/+\z}, '')
      @token = token || ENV.fetch('WEFT_API_TOKEN', nil)
      @timeout = timeout
    end

    # Create a task: { 'id', 'created' }. 'created' is false when an earlier
    # request with the same idempotency_key made it; a different request under
    # that key raises ConflictError. A delayed start takes run_at (a Time, or
    # RFC 3339 text with its zone) or delay (seconds, or text: '90s', '15m',
    # '3d'): the task is pending until then.
    def create_task(namespace, name, context: nil, version: nil, idempotency_key: nil, run_at: nil, delay: nil)
      body = task_body(namespace: namespace, name: name, context: context, version: version,
                       idempotency_key: idempotency_key, run_at: run_at, delay: delay)
      status, answer = request(:post, '/v1/tasks', body)
      { 'id' => answer['id'], 'created' => status == 201 }
    end

    # Create many tasks, one commit per batch (POST /v1/tasks/batch). tasks
    # holds hashes of create_task's arguments (:namespace, :name, :context,
    # :version, :idempotency_key). Answers { 'created', 'existing', 'failed',
    # 'results' } with one result per item at its 'index' in tasks:
    # { 'index', 'id', 'outcome' }, or { 'index', 'error' => { 'code',
    # 'message', 'path'? } } for an item that is wrong; the other items are
    # created. A list longer than batch_size goes as several requests; when one
    # fails, the batches before it are created: give items idempotency keys and
    # send the same list again, and those answer 'existing'.
    def create_tasks(tasks, batch_size: BATCH_SIZE)
      unless batch_size.is_a?(Integer) && batch_size >= 1
        raise ArgumentError, "create_tasks: batch_size must be an integer >= 1, got #{batch_size.inspect}"
      end

      bodies = tasks.each_with_index.map do |item, i|
        raise ArgumentError, "create_tasks: tasks[#{i}] must be a Hash of create_task's arguments, got #{item.inspect}" unless item.is_a?(Hash)

        item = item.transform_keys(&:to_sym)
        unknown = item.keys - TASK_FIELDS
        unless unknown.empty?
          raise ArgumentError, "create_tasks: tasks[#{i}] has unknown key #{unknown.first.inspect}; an item takes #{TASK_FIELDS.join(', ')}"
        end

        task_body(**item)
      end
      answer = { 'created' => 0, 'existing' => 0, 'failed' => 0, 'results' => [] }
      bodies.each_slice(batch_size).with_index do |slice, k|
        part = request(:post, '/v1/tasks/batch', { 'tasks' => slice })[1]
        %w[created existing failed].each { |count| answer[count] += part[count] }
        part['results'].each { |r| answer['results'] << r.merge('index' => (k * batch_size) + r['index']) }
      end
      answer
    end

    # The task created with this idempotency key.
    def get_task_by_key(key)
      request(:get, "/v1/tasks/by-key/#{escape(key)}")[1]
    end

    # The task and every step (state, attempts, result, error, timings).
    def get_task(id)
      request(:get, "/v1/tasks/#{escape(id)}")[1]
    end

    # Wait until the task ends and return it. With timeout (s), return the task
    # as it is once that has passed (task['ended'] is false). A restarting
    # orchestrator (503, refused connections) is waited out.
    def wait_for_task(id, timeout: nil)
      deadline = timeout && (monotonic + timeout)
      loop do
        left = deadline ? [deadline - monotonic, 0.0].max : LONG_POLL_S
        poll = [left, LONG_POLL_S].min
        begin
          task = request(:get, "/v1/tasks/#{escape(id)}/wait?timeout_ms=#{(poll * 1000).to_i}", NO_BODY, timeout: poll + LONG_POLL_SLACK_S)[1]
          return task if task['ended'] || left.zero?
        rescue UnavailableError, UnreachableError
          raise if left.zero?

          sleep([1.0, left].min)
        end
      end
    end

    # Cancel a pending or running task: { 'id', 'state', 'interrupted' }.
    def cancel_task(id, reason: nil)
      request(:post, "/v1/tasks/#{escape(id)}/cancel", reason.nil? ? NO_BODY : { 'reason' => reason })[1]
    end

    # Run a failed or cancelled task again from its failed and cancelled steps
    # (or from step): { 'id', 'state', 'enqueued' }.
    def retry_task(id, step: nil)
      request(:post, "/v1/tasks/#{escape(id)}/retry", step.nil? ? NO_BODY : { 'step' => step })[1]
    end

    # Complete a waiting wait step: payload (any JSON value) becomes its
    # result; { 'task_id', 'step', 'state' => 'complete' }. InvalidInputError
    # names the payload's field (body['path']) when it does not match the
    # step's payload_schema; ConflictError when the step is not waiting.
    def signal_step(id, step, payload = nil)
      request(:post, "/v1/tasks/#{escape(id)}/steps/#{escape(step)}/signal", payload)[1]
    end

    # The same as signal_step through a wait step's callback_path (or its
    # token alone); needs no API token.
    def signal_callback(callback, payload = nil)
      token = callback.delete_prefix('/v1/callbacks/')
      request(:post, "/v1/callbacks/#{escape(token)}", payload)[1]
    end

    # One page of tasks, newest first: { 'tasks', 'next_cursor', 'counts' }.
    # template is 'NAMESPACE/NAME' (or give namespace: and name:);
    # created_after and created_before take a Time or ISO 8601 text; pass
    # 'next_cursor' back as cursor.
    def list_tasks(state: nil, template: nil, namespace: nil, name: nil, created_after: nil, created_before: nil,
                   q: nil, limit: nil, cursor: nil)
      unless template.nil?
        namespace, name = template.split('/', -1)
        unless template.count('/') == 1 && !namespace.empty? && !name.empty?
          raise ArgumentError, "list_tasks: template #{template.inspect} is not NAMESPACE/NAME, e.g. e2e_linear/mathematical_sequence"
        end
      end
      params = { state: state, namespace: namespace, name: name, created_after: instant(created_after),
                 created_before: instant(created_before), q: q, limit: limit, cursor: cursor }.compact
      query = URI.encode_www_form(params)
      request(:get, "/v1/tasks#{query.empty? ? '' : "?#{query}"}")[1]
    end

    # Every schedule, by name, with its next firings.
    def list_schedules
      request(:get, '/v1/schedules')[1]['schedules']
    end

    # Create a schedule: template ('NAMESPACE/NAME[@VERSION]') run on cron in
    # timezone (docs/schedules.md). InvalidInputError names the field (cron,
    # timezone, template, context.…); ConflictError when the name is taken.
    def create_schedule(name, template:, cron:, timezone: nil, context: nil, overlap: nil, catch_up: nil, paused: nil)
      body = { 'name' => name, 'template' => template, 'cron' => cron, 'timezone' => timezone, 'context' => context,
               'overlap' => overlap, 'catch_up' => catch_up, 'paused' => paused }.compact
      request(:post, '/v1/schedules', body)[1]
    end

    # The schedule with its latest events (audit rows, newest first; default 20).
    def get_schedule(name, events: nil)
      request(:get, "/v1/schedules/#{escape(name)}#{events.nil? ? '' : "?events=#{Integer(events)}"}")[1]
    end

    # Stop a schedule firing; the schedule (pausing a paused one changes nothing).
    def pause_schedule(name)
      request(:post, "/v1/schedules/#{escape(name)}/pause")[1]
    end

    # Fire again from the next time after now (the pause's firings are not caught up); the schedule.
    def resume_schedule(name)
      request(:post, "/v1/schedules/#{escape(name)}/resume")[1]
    end

    # Delete a schedule (its audit rows stay): { 'name', 'deleted' => true }.
    def delete_schedule(name)
      request(:delete, "/v1/schedules/#{escape(name)}")[1]
    end

    private

    def request(method, path, body = NO_BODY, timeout: @timeout)
      uri = URI.parse(@url + path)
      req = { get: Net::HTTP::Get, post: Net::HTTP::Post, delete: Net::HTTP::Delete }.fetch(method).new(uri)
      req['accept'] = 'application/json'
      req['authorization'] = "Bearer #{@token}" if @token && !@token.empty?
      # net/http sends a POST without a body as an empty application/x-www-form-urlencoded one,
      # which the API refuses (415: an HTML form can send that type); an empty JSON object it takes.
      body = {} if body.equal?(NO_BODY) && method == :post
      unless body.equal?(NO_BODY)
        req['content-type'] = 'application/json'
        req.body = JSON.generate(body)
      end
      res = Net::HTTP.start(uri.host, uri.port, use_ssl: uri.scheme == 'https', open_timeout: timeout, read_timeout: timeout) do |http|
        http.request(req)
      end
      status = res.code.to_i
      raise api_error(status, res.body.to_s, "#{method.upcase} #{path.split('?').first}") if status >= 400

      [status, res.body.nil? || res.body.empty? ? nil : JSON.parse(res.body)]
    rescue SystemCallError, SocketError, Net::OpenTimeout, Net::ReadTimeout, IOError => e
      raise UnreachableError, "#{method.upcase} #{@url}#{path.split('?').first}: #{e.message}"
    end

    # A task request as the API spells it (POST /v1/tasks, and each batch item).
    # A batch item without namespace or name is sent without it: the server
    # answers that item's error.
    def task_body(namespace: nil, name: nil, context: nil, version: nil, idempotency_key: nil, run_at: nil, delay: nil)
      delay = "#{(delay * 1000).round}ms" if delay.is_a?(Numeric)
      { 'namespace' => namespace, 'name' => name, 'context' => context, 'version' => version,
        'idempotency_key' => idempotency_key, 'run_at' => instant(run_at), 'delay' => delay }.compact
    end

    # A Time as RFC 3339 text (text passes as it is: the server checks it).
    def instant(value)
      value.is_a?(Time) ? value.iso8601(3) : value
    end

    def api_error(status, text, what)
      body = begin
        parsed = JSON.parse(text)['error']
        parsed.is_a?(Hash) && parsed['code'] ? parsed : nil
      rescue JSON::ParserError, TypeError, NoMethodError
        nil
      end
      body ||= { 'code' => "http_#{status}", 'message' => "HTTP #{status} without a weft error body: #{text[0, 200]}" }
      ERRORS.fetch(status, ApiError).new(status, body, what)
    end

    def escape(segment)
      URI.encode_www_form_component(segment.to_s).gsub('+', '%20')
    end

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
