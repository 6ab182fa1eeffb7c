/** The client's event-stream reader and error classification, and the CLI's --json error document: no I/O. */
import { describe, expect, it } from 'vitest';
import { CommanderError } from 'commander';
import { readServerSentEvents } from '../../src/client/sse.js';
import { ApiConflictError, ApiInvalidInputError, ApiRateLimitedError, ApiUnavailableError, WeftApiError, apiError } from '../../src/client/errors.js';
import { errorDocument, wantsJson } from '../../src/cli/cli-output.js';
import { ValidationError } from '../../src/shared/errors.js';

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const bytes = chunks.map((c) => new TextEncoder().encode(c));
  return new ReadableStream({
    pull(controller) {
      const next = bytes.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

describe('readServerSentEvents', () => {
  it('reads events split anywhere across chunks, with CRLF, comments, retry lines and multi-line data', async () => {
    const events = [];
    for await (const e of readServerSentEvents(
      streamOf([
        ': weft\nretry: 1000\n\nevent: hel',
        'lo\ndata: {"a":1}\n',
        '\n: keepalive\n\r\nevent: step\r\ndata: one\r\ndata: two\r\n\r\ndata: last without its blank line\n',
      ]),
    )) {
      events.push(e);
    }
    expect(events).toEqual([
      { event: 'hello', data: '{"a":1}' },
      { event: 'step', data: 'one\ntwo' },
    ]);
  });
});

describe('apiError', () => {
  it('picks the class by status and keeps the server body', () => {
    const conflict = apiError(409, { error: { code: 'conflict', message: 'taken', task_id: 't1', differs: ['context'] } }, 'POST /v1/tasks', null);
    expect(conflict).toBeInstanceOf(ApiConflictError);
    expect(conflict).toMatchObject({ status: 409, code: 'conflict', message: 'taken', taskId: 't1', differs: ['context'], request: 'POST /v1/tasks' });
    expect(apiError(422, { error: { code: 'invalid_input', message: 'bad', path: 'x' } }, 'r', null)).toBeInstanceOf(ApiInvalidInputError);
    expect(apiError(429, { error: { code: 'rate_limited', message: 'slow down' } }, 'r', '7')).toMatchObject({ retryAfterS: 7 });
    expect(apiError(429, { error: { code: 'rate_limited', message: 'm' } }, 'r', null)).toBeInstanceOf(ApiRateLimitedError);
    expect(apiError(503, { error: { code: 'starting', message: 'm', retry_after_s: 5 } }, 'r', null)).toMatchObject({ retryAfterS: 5 });
    expect(apiError(503, { error: { code: 'starting', message: 'm' } }, 'r', null)).toBeInstanceOf(ApiUnavailableError);
  });

  it("names an answer that is not weft's error shape by its status", () => {
    const e = apiError(502, '<html>Bad Gateway</html>', 'GET /v1/tasks', null);
    expect(e.constructor).toBe(WeftApiError);
    expect(e).toMatchObject({ status: 502, code: 'http_502', message: 'HTTP 502 without a weft error body: <html>Bad Gateway</html>' });
  });
});

describe('the CLI --json error document', () => {
  it('is asked for by --json before any --', () => {
    expect(wantsJson(['node', 'weft', 'task', 'list', '--json'])).toBe(true);
    expect(wantsJson(['node', 'weft', 'run', 'x', '--', '--json'])).toBe(false);
    expect(wantsJson(['node', 'weft', 'task', 'list'])).toBe(false);
  });

  it('keeps the API error fields and status, the field path of a validation error, and the usage code', () => {
    const api = apiError(409, { error: { code: 'conflict', message: 'taken', task_id: 't1' } }, 'POST /v1/tasks', null);
    expect(errorDocument(api)).toEqual({ error: { code: 'conflict', message: 'taken', task_id: 't1', status: 409 } });
    expect(errorDocument(new ValidationError('no', 'id'))).toEqual({ error: { code: 'invalid_input', message: 'no', path: 'id' } });
    expect(errorDocument(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'"))).toEqual({
      error: { code: 'usage', message: "unknown option '--x'", usage_code: 'commander.unknownOption' },
    });
    expect(errorDocument(new Error('boom'))).toEqual({ error: { code: 'internal', message: 'boom' } });
  });
});
