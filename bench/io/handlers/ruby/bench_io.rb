# frozen_string_literal: true

# weft bench's I/O tier (not a shipped example): steps that wait, on the
# worker's Ruby threads.
#
# - io.sleep: waits context.ms milliseconds, returns { id, slept_ms }.
# - io.http: GETs context.url from the bench's own test server with Net::HTTP,
#   returns { id, status, echo }. It fetches nothing but WEFT_BENCH_IO_ORIGIN
#   (http://127.0.0.1:<port>, set by weft bench for its workers), ignores proxy
#   settings and follows no redirect: bench code, but never an open fetcher.
require 'json'
require 'net/http'

module BenchIo
  TIMEOUT_S = 10
  ORIGIN = %r{\Ahttp://127\.0\.0\.1:(\d{1,5})\z}
  # A plain path and query: nothing that could change the request line or the host.
  PATH = %r{\A/[A-Za-z0-9/_.~?=&%-]*\z}

  # [port, path] of context.url on the test server, or Weft::PermanentError saying why it is refused.
  def self.target(step)
    origin = ENV.fetch('WEFT_BENCH_IO_ORIGIN', nil)
    m = ORIGIN.match(origin.to_s)
    unless m
      raise Weft::PermanentError,
            "WEFT_BENCH_IO_ORIGIN is #{origin.to_json}, expected http://127.0.0.1:<port> " \
            "(weft bench sets it for its workers); the I/O benchmark's handlers fetch nothing else"
    end
    url = step.context['url']
    path = url.is_a?(String) && url.start_with?("#{origin}/") ? url[origin.length..] : nil
    unless path && PATH.match?(path)
      raise Weft::PermanentError,
            "context.url is #{url.to_json}; the I/O benchmark's handlers fetch only #{origin}/… " \
            "(weft bench's own test server, WEFT_BENCH_IO_ORIGIN) with a plain path and query, so it is refused"
    end
    [m[1].to_i, path]
  end

  def self.wait_ms(step)
    ms = step.context['ms']
    raise Weft::PermanentError, "context.ms must be a whole number of milliseconds, got #{ms.to_json}" unless ms.is_a?(Integer) && ms >= 0

    ms
  end
end

Weft.handler('io.sleep') do |step|
  ms = BenchIo.wait_ms(step)
  sleep ms / 1000.0
  { 'id' => step.context['id'], 'slept_ms' => ms }
end

Weft.handler('io.http') do |step|
  port, path = BenchIo.target(step)
  http = Net::HTTP.new('127.0.0.1', port, nil) # nil: no proxy from the environment
  http.open_timeout = BenchIo::TIMEOUT_S
  http.read_timeout = BenchIo::TIMEOUT_S
  res = http.start { |h| h.get(path) }
  raise "the bench's test server answered #{res.code} to GET #{path}: #{res.body.to_s[0, 200]}" unless res.code == '200'

  { 'id' => step.context['id'], 'status' => res.code.to_i, 'echo' => JSON.parse(res.body)['id'] }
end
