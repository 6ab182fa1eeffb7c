/**
 * Connection URLs without their secrets, for every place a URL is logged or
 * shown (logs, errors, /health, `weft cluster status`). The one function for
 * it: a URL is parsed, not pattern-matched, so a password given as
 * `?password=…` or holding a raw `@` (`postgres://u:p@ss@host/db`, which the
 * PostgreSQL driver reads up to the last `@`) is hidden as well as the usual
 * `user:password@` form.
 */

/** Query parameters that carry a secret (libpq's `password`, `sslpassword`; anything named like a token). */
const SECRET_PARAM = /pass|secret|token|credential/i;
const HIDDEN = '***';

/**
 * @example
 *   redactUrl('postgres://weft:s3cret@db:5432/weft?password=x&sslmode=require')
 *   // 'postgres://weft:***@db:5432/weft?password=***&sslmode=require'
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return redactUnparsable(url);
  }
  // An '@' the parser did not take as the end of user:password (a raw '#' or '/' before it): hide it all.
  if (url.includes('@') && !u.username && !u.password) return redactUnparsable(url);
  if (u.password) u.password = HIDDEN;
  for (const name of [...new Set(u.searchParams.keys())]) {
    if (SECRET_PARAM.test(name)) u.searchParams.set(name, HIDDEN);
  }
  // A fragment means nothing to a database driver; a raw `#` in a password would have started one.
  u.hash = '';
  return u.toString().replaceAll(encodeURIComponent(HIDDEN), HIDDEN);
}

/** What `url`'s secrets look like in text: the password (as written and decoded) and secret parameters' values. */
export function secretsOf(url: string | undefined): string[] {
  if (!url) return [];
  const out = new Set<string>();
  try {
    const u = new URL(url);
    if (u.password) {
      out.add(u.password);
      out.add(safeDecode(u.password));
    }
    for (const [name, value] of u.searchParams) if (SECRET_PARAM.test(name) && value) out.add(value);
  } catch {
    // unparsable: the text before the last '@' of the authority is the only guess
  }
  const raw = /^[a-z][a-z0-9+.-]*:\/\/[^:/?#]*:(.*)@/i.exec(url)?.[1];
  if (raw) out.add(raw);
  return [...out].filter((s) => s.length >= 3);
}

/** `text` with every occurrence of each secret replaced by `***` (for error messages that quote a URL or a host). */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join(HIDDEN);
  return out;
}

function redactUnparsable(url: string): string {
  return url.replace(/\/\/.*@/, `//${HIDDEN}@`).replace(/([?&][^=&#]*(?:pass|secret|token|credential)[^=&#]*=)[^&#]*/gi, `$1${HIDDEN}`);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
