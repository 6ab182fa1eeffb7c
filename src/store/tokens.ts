import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Database } from './database.js';
import { uuidv7 } from '../shared/ids.js';
import { ConflictError, NotFoundError, ValidationError } from '../shared/errors.js';
import type { CreatedToken, TokenRow } from '../core/api-types.js';

/**
 * API tokens (migrations/003_api_tokens.sql). A token is `weft_` + 32 random
 * bytes in base64url; the database keeps only its SHA-256, so a stolen
 * backup does not hand out access.
 *
 * Scopes grow: `read` sees everything, `write` also creates, cancels and
 * retries tasks, `admin` also registers templates. A token holds the scopes
 * it was created with; a route asks for one scope and any higher one does.
 */
export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export type { CreatedToken, TokenRow } from '../core/api-types.js';

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** true when `held` grants `needed` (`admin` ⊇ `write` ⊇ `read`). */
export function scopeAllows(held: readonly Scope[], needed: Scope): boolean {
  const rank = SCOPES.indexOf(needed);
  return held.some((s) => SCOPES.indexOf(s) >= rank);
}

/** Check scope names from the CLI; the error lists the valid ones. */
export function parseScopes(raw: readonly string[]): Scope[] {
  const scopes = [
    ...new Set(
      raw
        .flatMap((s) => s.split(','))
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
  if (scopes.length === 0) throw new ValidationError('a token needs at least one scope: --scope read, write or admin', 'scope');
  for (const s of scopes) {
    if (!(SCOPES as readonly string[]).includes(s)) {
      throw new ValidationError(`scope ${JSON.stringify(s)} is not one of ${SCOPES.join(', ')}`, 'scope');
    }
  }
  return scopes as Scope[];
}

const COLUMNS = 'id, name, scopes, prefix, created_at, last_used_at, revoked_at';

/**
 * Create a token. The returned `token` is the only copy there will ever be.
 *
 * @example
 *   const t = await createToken(db, 'ci', ['write']);
 *   console.log(t.token); // weft_...
 */
export async function createToken(db: Database, name: string, scopes: Scope[]): Promise<CreatedToken> {
  if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(name)) {
    throw new ValidationError(`token name ${JSON.stringify(name)} must be 1 to 64 letters, digits or _.@- (e.g. ci-deploy)`, 'name');
  }
  const token = `weft_${randomBytes(32).toString('base64url')}`;
  try {
    const { rows } = await db.query<TokenRow>(
      `INSERT INTO weft.api_tokens (id, name, scopes, token_hash, prefix) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
      [uuidv7(), name, scopes, hashToken(token), token.slice(0, 12)],
    );
    return { ...rows[0]!, token };
  } catch (err) {
    if ((err as pg.DatabaseError).code === '23505') {
      throw new ConflictError(`a live token named ${JSON.stringify(name)} already exists; revoke it first (weft token revoke ${name}) or pick another name`);
    }
    throw err;
  }
}

export async function listTokens(db: Database, opts: { includeRevoked?: boolean } = {}): Promise<TokenRow[]> {
  const { rows } = await db.query<TokenRow>(
    `SELECT ${COLUMNS} FROM weft.api_tokens ${opts.includeRevoked ? '' : 'WHERE revoked_at IS NULL'} ORDER BY created_at`,
  );
  return rows;
}

/** Revoke the live token with this name (or id). */
export async function revokeToken(db: Database, nameOrId: string): Promise<TokenRow> {
  const { rows } = await db.query<TokenRow>(
    `UPDATE weft.api_tokens SET revoked_at = clock_timestamp()
      WHERE revoked_at IS NULL AND (name = $1 OR id::text = $1) RETURNING ${COLUMNS}`,
    [nameOrId],
  );
  if (!rows[0]) throw new NotFoundError(`no live token named ${JSON.stringify(nameOrId)}; \`weft token list\` shows them`);
  return rows[0];
}

/** The live token with this secret, or undefined. Marks it used (at most once a minute, to spare writes). */
export async function findLiveToken(db: Database, token: string): Promise<TokenRow | undefined> {
  const { rows } = await db.query<TokenRow>(
    `UPDATE weft.api_tokens SET last_used_at = clock_timestamp()
      WHERE token_hash = $1 AND revoked_at IS NULL
        AND (last_used_at IS NULL OR last_used_at < clock_timestamp() - interval '1 minute')
      RETURNING ${COLUMNS}`,
    [hashToken(token)],
    'weft_token_touch',
  );
  if (rows[0]) return rows[0];
  const again = await db.query<TokenRow>(
    `SELECT ${COLUMNS} FROM weft.api_tokens WHERE token_hash = $1 AND revoked_at IS NULL`,
    [hashToken(token)],
    'weft_token_find',
  );
  return again.rows[0];
}

export async function liveTokenCount(db: Database): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM weft.api_tokens WHERE revoked_at IS NULL', [], 'weft_token_count');
  return rows[0]!.n;
}

/** Which of these token ids are still live (not revoked): long-lived answers held with a revoked one are ended. */
export async function liveTokenIds(db: Database, ids: readonly string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>(
    'SELECT id FROM weft.api_tokens WHERE id = ANY($1::uuid[]) AND revoked_at IS NULL',
    [ids],
    'weft_token_live_ids',
  );
  return new Set(rows.map((r) => r.id));
}
