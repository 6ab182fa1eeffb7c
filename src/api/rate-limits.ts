import type { FastifyRequest } from 'fastify';
import type { RateLimitOptions } from '@fastify/rate-limit';
import { isLoopback } from './auth.js';

/**
 * A route's rate limit (a `config.rateLimit` for @fastify/rate-limit): `max`
 * per minute per token, or per address for a non-loopback caller of an
 * open API (`--insecure`). A loopback caller of an open API is not limited:
 * that is a developer or a load test on this machine, and the engine, not a
 * counter, is what should set its pace (issue 20).
 *
 * Counters live in each orchestrator's memory: behind N orchestrators a
 * token gets N × `max` (docs/operations.md says so).
 *
 * @example
 *   app.post('/v1/tasks', { config: { rateLimit: perTokenRateLimit('create', 'tasks', 60_000, 'WEFT_TASK_RATE_LIMIT') } }, handler)
 */
export function perTokenRateLimit(verb: string, noun: string, max: number, setting: string): RateLimitOptions {
  return {
    max,
    timeWindow: 60_000,
    allowList: (req: FastifyRequest) => !req.apiToken && isLoopback(req.socket.remoteAddress),
    keyGenerator: (req: FastifyRequest) => (req.apiToken ? `token:${req.apiToken.id}` : `ip:${req.ip}`),
    errorResponseBuilder: (req: FastifyRequest, ctx: { max: number; ttl: number }) => ({
      statusCode: 429,
      code: 'rate_limited',
      message:
        `${req.apiToken ? `token ${JSON.stringify(req.apiToken.name)}` : 'this address'} may ${verb} ${ctx.max} ${noun} per minute ` +
        `on this orchestrator (${setting}); try again in ${Math.ceil(ctx.ttl / 1000)} s`,
    }),
  };
}
