import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Database } from '../store/database.js';
import type { Logger } from '../shared/logger.js';
import { ConfigError } from '../shared/errors.js';
import { SCOPES, findLiveToken, liveTokenCount, scopeAllows, type Scope, type TokenRow } from '../store/tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The token the request authenticated with; undefined while the API runs open. */
    apiToken?: TokenRow;
  }
  interface FastifyContextConfig {
    /** The scope a route needs; see {@link requiredScope} for the defaults. */
    scope?: Scope | 'open';
  }
}

export interface AuthOptions {
  /** Serve without tokens on a non-loopback address (`--insecure`). */
  insecure?: boolean;
  /** How long "are there any tokens?" and each token's lookup are cached (ms): `weft token create` and `revoke` in another process take effect within it. */
  cacheMs?: number;
}

/**
 * The scope each route needs, in one table. Everything not listed as open
 * needs `read` (so does checking a task request, POST /v1/tasks/check);
 * creating, cancelling and retrying tasks need `write`;
 * registering templates needs `admin`. Open: /health (for load balancers),
 * /v1/auth (so the dashboard can tell whether to ask for a token) and the
 * dashboard's static files (the page itself carries no data).
 */
export function requiredScope(method: string, url: string): Scope | 'open' {
  if (url === '/health' || url === '/v1/auth') return 'open';
  if (!url.startsWith('/v1/') && url !== '/metrics') return 'open';
  if (method === 'POST' && url === '/v1/templates') return 'admin';
  // Checks a context against a template, creating nothing: what a reader may see anyway.
  if (method === 'POST' && url === '/v1/tasks/check') return 'read';
  if (method !== 'GET' && method !== 'HEAD') return 'write';
  return 'read';
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+|localhost)$/;
export function isLoopback(address: string | undefined): boolean {
  return address !== undefined && LOOPBACK.test(address);
}

/**
 * Refuse to serve an open API beyond this machine: with no live token, only
 * a loopback address may be bound unless `--insecure` says otherwise.
 */
export function assertSafeBinding(host: string, liveTokens: number, insecure: boolean): void {
  if (liveTokens > 0 || insecure || isLoopback(host)) return;
  throw new ConfigError(
    `refusing to listen on ${host} with no API token: anyone who can reach it could create and cancel tasks. ` +
      'Create one first (weft token create --name NAME --scope admin), listen on 127.0.0.1, or pass --insecure',
  );
}

type AuthError = { status: number; code: string; message: string };

/**
 * Bearer-token checks for every request (an onRequest hook). While no live
 * token exists the API is open to loopback callers (and to everyone with
 * `--insecure`); once one exists every non-open route needs a token with
 * the route's scope.
 */
export class ApiAuth {
  private cached: { at: number; required: boolean } | undefined;
  /** Tokens looked up in the last `cacheMs`, by secret: one query per token per second, not per request. */
  private readonly known = new Map<string, { at: number; token: TokenRow | undefined }>();
  private readonly cacheMs: number;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
    private readonly opts: AuthOptions = {},
  ) {
    this.cacheMs = opts.cacheMs ?? 1_000;
  }

  /** Whether requests must carry a token now (any live token exists). */
  async tokensRequired(): Promise<boolean> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < this.cacheMs) return this.cached.required;
    const required = (await liveTokenCount(this.db)) > 0;
    this.cached = { at: now, required };
    return required;
  }

  /** The live token with this secret; a revocation takes effect within `cacheMs`. */
  private async lookup(secret: string): Promise<TokenRow | undefined> {
    const now = Date.now();
    const hit = this.known.get(secret);
    if (hit && now - hit.at < this.cacheMs) return hit.token;
    const token = await findLiveToken(this.db, secret);
    if (this.known.size >= 1_000) this.known.clear();
    this.known.set(secret, { at: now, token });
    return token;
  }

  install(app: FastifyInstance): void {
    app.decorateRequest('apiToken', undefined);
    app.addHook('onRequest', async (req, reply) => {
      const failure = await this.check(req);
      if (failure) return reply.status(failure.status).send({ error: { code: failure.code, message: failure.message } });
    });
    app.get('/v1/auth', async (req) => {
      const required = await this.tokensRequired();
      const header = bearer(req);
      const token = required && header ? await this.lookup(header) : undefined;
      const open = !required && this.openTo(req);
      // What this caller may do, so a client (the dashboard) offers only the actions it is allowed.
      const allows = SCOPES.filter((s) => open || (token !== undefined && scopeAllows(token.scopes, s)));
      return { required, open_to_this_caller: open, token: token ? { name: token.name, scopes: token.scopes } : null, allows };
    });
  }

  private openTo(req: FastifyRequest): boolean {
    return this.opts.insecure === true || isLoopback(req.socket.remoteAddress);
  }

  private async check(req: FastifyRequest): Promise<AuthError | undefined> {
    const url = req.routeOptions.url ?? req.url.split('?')[0]!;
    const scope = req.routeOptions.config?.scope ?? requiredScope(req.method, url);
    if (scope === 'open') return undefined;
    if (!(await this.tokensRequired())) {
      if (this.openTo(req)) return undefined;
      return {
        status: 401,
        code: 'token_required',
        message:
          'this API has no token yet and answers only loopback callers; create one with `weft token create --name NAME --scope read` and send it as Authorization: Bearer <token>',
      };
    }
    const presented = bearer(req);
    if (!presented) {
      return {
        status: 401,
        code: 'token_required',
        message: `${req.method} ${url} needs a bearer token with scope ${scope}: send Authorization: Bearer <token> (weft token create --scope ${scope})`,
      };
    }
    const token = await this.lookup(presented);
    if (!token) return { status: 401, code: 'token_invalid', message: 'the bearer token is unknown or revoked; `weft token list` shows the live ones' };
    if (!scopeAllows(token.scopes, scope)) {
      return {
        status: 403,
        code: 'forbidden',
        message: `token ${JSON.stringify(token.name)} has scope ${token.scopes.join(', ')}; ${req.method} ${url} needs ${scope}`,
      };
    }
    req.apiToken = token;
    return undefined;
  }
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m?.[1];
}

/** Who did it, for audit rows and logs: the token's name, or `anonymous` while the API runs open. */
export function actor(req: FastifyRequest): string {
  return req.apiToken ? `token:${req.apiToken.name}` : 'anonymous';
}
