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
# Every error answer raises a subclass of Weft::Client::ApiError carrying the
# server's code, the HTTP status and the whole error body; an orchestrator
# that cannot be reached raises Weft::Client::UnreachableError.
require 'json'
require 'net/http'
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
    # that key raises ConflictError.
    def create_task(namespace, name, context: nil, version: nil, idempotency_key: nil)
      body = { 'namespace' => namespace, 'name' => name }
      body['context'] = context unless context.nil?
      body['version'] = version unless version.nil?
      body['idempotency_key'] = idempotency_key unless idempotency_key.nil?
      status, answer = request(:post, '/v1/tasks', body)
      { 'id' => answer['id'], 'created' => status == 201 }
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
          task = request(:get, "/v1/tasks/#{escape(id)}/wait?timeout_ms=#{(poll * 1000).to_i}", nil, timeout: poll + LONG_POLL_SLACK_S)[1]
          return task if task['ended'] || left.zero?
        rescue UnavailableError, UnreachableError
          raise if left.zero?

          sleep([1.0, left].min)
        end
      end
    end

    # Cancel a pending or running task: { 'id', 'state', 'interrupted' }.
    def cancel_task(id, reason: nil)
      request(:post, "/v1/tasks/#{escape(id)}/cancel", reason.nil? ? {} : { 'reason' => reason })[1]
    end

    private

    def request(method, path, body = nil, timeout: @timeout)
      uri = URI.parse(@url + path)
      req = method == :post ? Net::HTTP::Post.new(uri) : Net::HTTP::Get.new(uri)
      req['accept'] = 'application/json'
      req['authorization'] = "Bearer #{@token}" if @token && !@token.empty?
      unless body.nil?
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
