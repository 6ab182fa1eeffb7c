import type { FastifyReply, FastifyRequest } from 'fastify';

/** Comment lines keep proxies and idle timeouts from closing a quiet stream; they carry no data. */
const KEEPALIVE_MS = 15_000;

export interface EventStream {
  send(event: string, data: unknown): void;
  /** Runs when the client goes away (or the server closes the stream). */
  onClose(fn: () => void): void;
  close(): void;
}

/**
 * Turn a request into a text/event-stream response. The route's handler
 * returns right after; events are written as they happen.
 */
export function openEventStream(req: FastifyRequest, reply: FastifyReply): EventStream {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  // `retry`: how long an EventSource waits before reconnecting when the stream ends.
  res.write(': weft\nretry: 1000\n\n');
  const closers: Array<() => void> = [];
  let closed = false;
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
  keepalive.unref();
  const finish = () => {
    if (closed) return;
    closed = true;
    clearInterval(keepalive);
    for (const fn of closers) fn();
    res.end();
  };
  req.raw.on('close', finish);
  return {
    send(event, data) {
      if (!closed) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    onClose(fn) {
      closers.push(fn);
    },
    close: finish,
  };
}
