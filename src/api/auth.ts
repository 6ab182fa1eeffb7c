import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Database } from '../store/database.js';
import type { Logger } from '../shared/logger.js';
import { ConfigError } from '../shared/errors.js';
import { SCOPES, findLiveToken, liveTokenCount, liveTokenIds, scopeAllows, type Scope, type TokenRow } from '../store/tokens.js';

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
 * registering templates and managing tokens need `admin`. Open: /health (for load balancers),
 * /v1/auth (so the dashboard can tell whether to ask for a token) and the
 * dashboard's static files (the page itself carries no data).
 */
export function requiredScope(method: string, url: string): Scope | 'open' {
  if (url === '/health' || url === '/v1/auth') return 'open';
  if (!url.startsWith('/v1/') && url !== '/metrics') return 'open';
  if (method === 'POST' && url === '/v1/templates') return 'admin';
  // Tokens grant access: seeing or making them is an administrator's.
  if (url === '/v1/tokens' || url.startsWith('/v1/tokens/')) return 'admin';
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

type AuthError = { status: number; code: string; message: string; retryAfterS?: number };

/** Unknown tokens one address may present per minute before its requests are refused without a lookup. */
export const AUTH_FAILURES_PER_MINUTE = 20;
/** Addresses whose failures are remembered; past this, expired entries go first, then the oldest. */
const MAX_TRACKED_ADDRESSES = 10_000;
/** Looked-up live tokens kept; unknown ones are never cached (the throttle bounds their lookups). */
const MAX_KNOWN_TOKENS = 1_000;

/**
 * Failed authentications per address, in one-minute windows: an address
 * that presented {@link AUTH_FAILURES_PER_MINUTE} unknown tokens is refused
 * (429) without a database lookup until its window ends. Guessing tokens is
 * hopeless anyway (256 random bits); this keeps a guesser from costing a
 * query per request.
 */
class FailedAuthThrottle {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  /** Seconds until `address` may try again; 0 when it may now. */
  blockedFor(address: string, now = Date.now()): number {
    const w = this.windows.get(address);
    if (!w || w.resetAt <= now) return 0;
    return w.count >= AUTH_FAILURES_PER_MINUTE ? Math.ceil((w.resetAt - now) / 1000) : 0;
  }

  fail(address: string, now = Date.now()): void {
    const w = this.windows.get(address);
    if (w && w.resetAt > now) {
      w.count++;
      return;
    }
    if (this.windows.size >= MAX_TRACKED_ADDRESSES) {
      for (const [a, x] of this.windows) if (x.resetAt <= now) this.windows.delete(a);
      if (this.windows.size >= MAX_TRACKED_ADDRESSES) this.windows.delete(this.windows.keys().next().value!);
    }
    this.windows.delete(address);
    this.windows.set(address, { count: 1, resetAt: now + 60_000 });
  }
}

/** A long-lived answer (event stream, long-poll) that must end when its token is revoked. */
interface Holder {
  tokenId: string | undefined;
  end: (message: string) => void;
}

/**
 * Bearer-token checks for every request (an onRequest hook). While no live
 * token exists the API is open to loopback callers (and to everyone with
 * `--insecure`); once one exists every non-open route needs a token with
 * the route's scope.
 */
export class ApiAuth {
  private cached: { at: number; required: boolean } | undefined;
  /** Live tokens looked up in the last `cacheMs`, by secret: one query per token per second, not per request. */
  private readonly known = new Map<string, { at: number; token: TokenRow }>();
  private readonly cacheMs: number;
  private readonly failures = new FailedAuthThrottle();
  private readonly holders = new Set<Holder>();
  private holderCheck: NodeJS.Timeout | undefined;

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

  /**
   * {@link tokensRequired}, or while PostgreSQL cannot say, the last answer it
   * gave (false before any): for checks that must not fail with the database,
   * such as the open-mode guard in front of /health.
   */
  async tokensRequiredOrLastKnown(): Promise<boolean> {
    try {
      return await this.tokensRequired();
    } catch {
      return this.cached?.required ?? false;
    }
  }

  /** The live token with this secret; a revocation takes effect within `cacheMs`. An unknown secret counts against its address. */
  private async lookup(secret: string, address: string): Promise<TokenRow | undefined> {
    const now = Date.now();
    const hit = this.known.get(secret);
    if (hit && now - hit.at < this.cacheMs) return hit.token;
    const token = await findLiveToken(this.db, secret);
    this.known.delete(secret);
    if (!token) {
      this.failures.fail(address);
      return undefined;
    }
    if (this.known.size >= MAX_KNOWN_TOKENS) this.known.delete(this.known.keys().next().value!);
    this.known.set(secret, { at: now, token });
    return token;
  }

  install(app: FastifyInstance): void {
    app.decorateRequest('apiToken', undefined);
    app.addHook('onRequest', async (req, reply) => {
      const failure = await this.check(req);
      if (!failure) return;
      // The body (if any) is never read: the connection closes after the answer, so a slow body cannot hold it.
      void reply.status(failure.status).header('connection', 'close');
      if (failure.retryAfterS !== undefined) void reply.header('retry-after', String(failure.retryAfterS));
      const extra = failure.retryAfterS !== undefined ? { retry_after_s: failure.retryAfterS } : {};
      return reply.send({ error: { code: failure.code, message: failure.message, ...extra } });
    });
    app.addHook('onClose', async () => {
      clearInterval(this.holderCheck);
      this.holderCheck = undefined;
    });
    app.get('/v1/auth', async (req) => {
      const required = await this.tokensRequired();
      const header = bearer(req);
      const address = req.socket.remoteAddress ?? '';
      const token = required && header && this.failures.blockedFor(address) === 0 ? await this.lookup(header, address) : undefined;
      const open = !required && this.openTo(req);
      // What this caller may do, so a client (the dashboard) offers only the actions it is allowed.
      const allows = SCOPES.filter((s) => open || (token !== undefined && scopeAllows(token.scopes, s)));
      return { required, open_to_this_caller: open, token: token ? { name: token.name, scopes: token.scopes } : null, allows };
    });
  }

  /**
   * Keep a long-lived answer (an event stream, a long-poll) tied to the
   * request's token: `end` runs, with the reason, once that token is revoked
   * (or, for a request made while the API was open, once a token exists).
   * Checked every `cacheMs` (at least 100 ms) while any answer is held.
   * Returns the function that lets go (call it when the answer ends).
   */
  holdOpen(req: FastifyRequest, end: (message: string) => void): () => void {
    const holder: Holder = { tokenId: req.apiToken?.id, end };
    this.holders.add(holder);
    this.holderCheck ??= setInterval(() => void this.checkHolders(), Math.max(100, this.cacheMs));
    this.holderCheck.unref();
    return () => {
      this.holders.delete(holder);
      if (this.holders.size === 0) {
        clearInterval(this.holderCheck);
        this.holderCheck = undefined;
      }
    };
  }

  private async checkHolders(): Promise<void> {
    const held = [...this.holders];
    const ids = [...new Set(held.flatMap((h) => (h.tokenId ? [h.tokenId] : [])))];
    let live: Set<string>;
    let required: boolean;
    try {
      [live, required] = await Promise.all([ids.length > 0 ? liveTokenIds(this.db, ids) : Promise.resolve(new Set<string>()), this.tokensRequired()]);
    } catch {
      return; // PostgreSQL unreachable: check again next time; a request made now would get 503 anyway
    }
    for (const h of held) {
      if (!this.holders.has(h)) continue;
      if (h.tokenId ? !live.has(h.tokenId) : required) {
        this.holders.delete(h);
        h.end(
          h.tokenId
            ? 'the token this request was made with has been revoked; send a live one (`weft token list` shows them)'
            : 'an API token now exists, so every request needs one; send it as Authorization: Bearer <token>',
        );
      }
    }
    if (this.holders.size === 0) {
      clearInterval(this.holderCheck);
      this.holderCheck = undefined;
    }
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
    const address = req.socket.remoteAddress ?? '';
    const wait = this.failures.blockedFor(address);
    if (wait > 0) {
      return {
        status: 429,
        code: 'auth_throttled',
        message: `this address presented ${AUTH_FAILURES_PER_MINUTE} unknown or revoked tokens within a minute; its requests are refused for ${wait} s (check the token: \`weft token list\`)`,
        retryAfterS: wait,
      };
    }
    const token = await this.lookup(presented, address);
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
