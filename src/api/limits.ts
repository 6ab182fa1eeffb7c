import type http from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { ApiSettings } from '../shared/config.js';
import { errorBody } from './protections.js';

/** How long a request waits for room in the body budget before it is answered 503 (ms). */
const BODY_WAIT_MS = 10_000;
/** What a 503 for a full body budget asks the client to wait (s). */
const BODY_RETRY_AFTER_S = 1;

/**
 * Node's connection limits on the API port: headers and body within
 * `requestTimeout` (a slow or stalled body cannot hold a connection for
 * Node's default five minutes), headers within a third of it, at most
 * `maxConnections` sockets. Long-polls and event streams are answers, not
 * requests: these do not end them.
 */
export function applyServerLimits(server: http.Server, limits: Pick<ApiSettings, 'requestTimeoutMs' | 'maxConnections'>): void {
  server.requestTimeout = limits.requestTimeoutMs;
  server.headersTimeout = Math.max(1_000, Math.round(limits.requestTimeoutMs / 3));
  server.maxConnections = limits.maxConnections;
}

/** Node checks request timeouts on this period; the default (30 s) would double a 30 s timeout. */
export const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;

/**
 * Bytes of request bodies this server reads and handles at once. A body's
 * bytes (its Content-Length, or the body limit when it does not say) are
 * taken before it is read and given back when its answer is sent. A request
 * that does not fit waits, in order, up to {@link BODY_WAIT_MS}, then gets
 * 503 with `Retry-After`. Memory held for request bodies is then bounded by
 * a few times the budget, whatever the number of concurrent clients.
 */
export class BodyBudget {
  private used = 0;
  private readonly waiting: Array<{ bytes: number; grant: () => void }> = [];

  constructor(
    readonly capacity: number,
    private readonly waitMs = BODY_WAIT_MS,
  ) {}

  /** Resolves with a release function once `bytes` fit; with undefined when they did not within the wait. */
  async take(bytes: number): Promise<(() => void) | undefined> {
    const n = Math.min(bytes, this.capacity);
    if (this.waiting.length === 0 && this.used + n <= this.capacity) return this.grant(n);
    return new Promise((resolve) => {
      const entry = {
        bytes: n,
        grant: () => {
          clearTimeout(timer);
          resolve(this.grant(n));
        },
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(entry), 1);
        resolve(undefined);
        this.drain();
      }, this.waitMs);
      this.waiting.push(entry);
    });
  }

  private grant(n: number): () => void {
    this.used += n;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= n;
      this.drain();
    };
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.used + this.waiting[0]!.bytes <= this.capacity) this.waiting.shift()!.grant();
  }
}

/**
 * Put every request that carries a body under the budget (a preParsing hook,
 * before a byte of it is read). A declared Content-Length over the body limit
 * is answered 413 at once, naming the limit and its setting, and the
 * connection is closed without reading the body.
 */
export function installBodyLimits(app: FastifyInstance, limits: Pick<ApiSettings, 'bodyLimitBytes' | 'bodyBudgetBytes'>, budget: BodyBudget): void {
  app.addHook('preParsing', async (req, reply, payload) => {
    const declared = req.headers['content-length'];
    const chunked = req.headers['transfer-encoding'] !== undefined;
    if (declared === undefined && !chunked) return payload;
    const length = declared === undefined ? limits.bodyLimitBytes : Number(declared);
    if (length === 0) return payload;
    if (length > limits.bodyLimitBytes) {
      void reply.status(413).header('connection', 'close').send(tooLargeBody(limits.bodyLimitBytes));
      return payload;
    }
    const release = await budget.take(length);
    if (!release) {
      void reply
        .status(503)
        .header('retry-after', String(BODY_RETRY_AFTER_S))
        .send(
          errorBody(
            'busy',
            `this orchestrator is reading ${formatBytes(limits.bodyBudgetBytes)} of request bodies already (WEFT_API_BODY_BUDGET); retry in ${BODY_RETRY_AFTER_S} s`,
            { retry_after_s: BODY_RETRY_AFTER_S },
          ),
        );
      return payload;
    }
    // A client that went away while it waited has no answer left to end: give the bytes back now.
    if (reply.raw.closed || reply.raw.destroyed) release();
    else reply.raw.once('close', release);
    return payload;
  });
}

/** The 413 body: the limit, its setting, and what to do instead. */
export function tooLargeBody(limit: number): { error: Record<string, unknown> } {
  return errorBody(
    'too_large',
    `the request body is larger than the limit of ${formatBytes(limit)} (WEFT_API_BODY_LIMIT); ` +
      'pass large data by reference (an id or URL the handler reads) instead, or raise WEFT_API_BODY_LIMIT',
    { limit_bytes: limit },
  );
}

/** 2097152 → "2 MiB (2097152 bytes)" */
function formatBytes(n: number): string {
  const mib = n / (1024 * 1024);
  return Number.isInteger(mib) ? `${mib} MiB (${n} bytes)` : `${n} bytes`;
}
