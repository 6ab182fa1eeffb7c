import type http from 'node:http';
import type net from 'node:net';
import { networkInterfaces } from 'node:os';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isLoopback } from './auth.js';

/**
 * The API's error body, `{ "error": { code, message, ... } }` (docs/api.md), for
 * the places that answer outside fastify's error handler (a raw socket, the
 * port's "starting" answer, hooks).
 */
export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}): { error: Record<string, unknown> } {
  return { error: { code, message, ...extra } };
}

/**
 * The dashboard is bundled and served from this origin (dist/ui): scripts,
 * styles and data come from `'self'` only; `data:` images are its empty
 * favicon. `'unsafe-eval'` is there because the New-task form compiles the
 * template's input_schema with ajv, which generates its checker as code;
 * inline scripts and every other origin stay refused. No page may frame it
 * (clickjacking the Cancel button).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self' 'unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Sent on every response of the API port: pages, JSON, errors, event streams, the "starting" answers. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
});

export function setSecurityHeaders(res: http.ServerResponse): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
}

/**
 * Node's answer to a request it could not read (headers too large, too slow,
 * malformed), in the API's error envelope and with its headers; the socket is
 * closed after it. Installed on the API port from its first moment.
 */
export function answerClientError(err: Error & { code?: string }, socket: net.Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, body] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [
          431,
          'Request Header Fields Too Large',
          errorBody('headers_too_large', 'the request headers are larger than this server reads (16 KiB); send fewer or smaller headers'),
        ]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [
            408,
            'Request Timeout',
            errorBody('request_timeout', 'the request (headers and body) did not arrive in time (WEFT_API_REQUEST_TIMEOUT_MS); send it at once'),
          ]
        : [400, 'Bad Request', errorBody('bad_request', `the request could not be read as HTTP/1.1 (${err.code ?? err.message})`)];
  if (socket.writable) {
    const text = JSON.stringify(body);
    const headers = Object.entries(SECURITY_HEADERS)
      .map(([n, v]) => `${n}: ${v}\r\n`)
      .join('');
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${headers}connection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy();
}

export interface OpenModeOptions {
  /** Whether any live token exists now (cached by ApiAuth). */
  tokensRequired: () => Promise<boolean>;
  /** Host names answered besides loopback names and the server's own addresses (WEFT_API_ALLOWED_HOSTS). */
  allowedHosts?: readonly string[];
}

/**
 * While no token exists the API trusts its callers by address (loopback), so a
 * web page in the operator's browser could drive it: a cross-site form or a
 * `no-cors` fetch (they carry cookies-free requests to 127.0.0.1 just fine),
 * or a DNS-rebound name that points at 127.0.0.1 and reads every answer. This
 * onRequest hook refuses, while open:
 *
 * - a `Host` that is not a loopback name, an address of this machine, or a
 *   name in WEFT_API_ALLOWED_HOSTS (DNS rebinding always arrives with the
 *   attacker's name);
 * - a request whose `Origin` is another origin, and an API request a browser
 *   marks as sent from another site (`Sec-Fetch-Site`); the dashboard's own
 *   requests are same-origin, and a link to the dashboard still opens it.
 *
 * Bodies of any other type than JSON or YAML are refused by the parsers
 * (415), so an HTML form cannot post one. Once a token exists, requests need
 * it and a page cannot send it: these checks step aside.
 */
export function installOpenModeGuard(app: FastifyInstance, opts: OpenModeOptions): void {
  const allowed = new Set(['localhost', ...(opts.allowedHosts ?? []).map((h) => h.toLowerCase())]);
  const ownAddresses = localAddresses();
  app.addHook('onRequest', async (req, reply) => {
    if (await opts.tokensRequired()) return;
    const refusal = openModeRefusal(req, allowed, ownAddresses);
    if (refusal) return reply.status(403).header('connection', 'close').send(errorBody(refusal.code, refusal.message));
  });
}

function openModeRefusal(req: FastifyRequest, allowed: Set<string>, own: Set<string>): { code: string; message: string } | undefined {
  const host = req.headers.host ?? '';
  const name = hostName(host);
  const local = req.socket.localAddress;
  const hostOk =
    name !== undefined &&
    (allowed.has(name) || name.endsWith('.localhost') || isLoopback(name) || own.has(name) || (local !== undefined && normalizeAddress(local) === name));
  if (!hostOk) {
    return {
      code: 'host_not_allowed',
      message:
        `Host ${JSON.stringify(host)} is not a name this API answers while it has no token: it answers loopback names (localhost, 127.0.0.1, [::1]), ` +
        'the addresses of this machine and the names in WEFT_API_ALLOWED_HOSTS (a guard against DNS rebinding). ' +
        'Use one of those, add the name to WEFT_API_ALLOWED_HOSTS, or create a token (weft token create)',
    };
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !sameOrigin(origin, host)) {
    return {
      code: 'cross_origin',
      message:
        `a request from another origin (Origin: ${origin}) is refused while this API has no token: a web page elsewhere must not drive it. ` +
        'Use the dashboard this server serves, call it without an Origin header (curl, weft, a script), or create a token (weft token create)',
    };
  }
  const site = req.headers['sec-fetch-site'];
  const url = req.url;
  if ((site === 'cross-site' || site === 'same-site') && (url.startsWith('/v1/') || url.startsWith('/metrics'))) {
    return {
      code: 'cross_origin',
      message: `a request a browser sent from another site (Sec-Fetch-Site: ${site}) is refused while this API has no token; use the dashboard this server serves, or create a token`,
    };
  }
  return undefined;
}

/** `Host: [::1]:8080` → `::1`; `Example.com:80` → `example.com`; undefined when it is not a host. */
function hostName(host: string): string | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/.exec(host.trim());
  if (!m) return undefined;
  return (m[1] ?? m[2]!).toLowerCase().replace(/\.$/, '');
}

function sameOrigin(origin: string, host: string): boolean {
  try {
    const o = new URL(origin);
    return (o.protocol === 'http:' || o.protocol === 'https:') && o.host.toLowerCase() === host.toLowerCase();
  } catch {
    return false; // `null` (a sandboxed frame, a file: page) or garbage: not this origin
  }
}

function normalizeAddress(a: string): string {
  return a.replace(/^::ffff:/, '').toLowerCase();
}

/** Every address of this machine's interfaces: a server bound to 0.0.0.0 is reached by any of them. */
function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) out.add(normalizeAddress(i.address));
  return out;
}
