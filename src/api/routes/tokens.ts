import type { FastifyInstance } from 'fastify';
import type { Database } from '../../store/database.js';
import { createToken, listTokens, parseScopes, revokeToken } from '../../store/tokens.js';
import { actor } from '../auth.js';
import type { Logger } from '../../shared/logger.js';

export interface TokenRoutesOptions {
  db: Database;
  log: Logger;
}

const createTokenSchema = {
  type: 'object',
  required: ['name', 'scopes'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 64 },
    scopes: { type: 'array', minItems: 1, items: { type: 'string' } },
  },
} as const;

/**
 * API tokens through the API (admin scope, see requiredScope), so `weft
 * token` can manage them on a remote orchestrator with an admin token
 * instead of needing the database:
 *
 *   GET  /v1/tokens?all=true          tokens (never their secrets); `all` includes revoked ones
 *   POST /v1/tokens                   { name, scopes } → 201 with the token itself, shown this once
 *   POST /v1/tokens/:name/revoke      revoke a live token by name or id
 */
export async function tokenRoutes(app: FastifyInstance, opts: TokenRoutesOptions): Promise<void> {
  const { db, log } = opts;

  app.get('/v1/tokens', async (req) => {
    const all = (req.query as { all?: string }).all;
    return { tokens: await listTokens(db, { includeRevoked: all === 'true' || all === '1' }) };
  });

  app.post('/v1/tokens', { schema: { body: createTokenSchema } }, async (req, reply) => {
    const body = req.body as { name: string; scopes: string[] };
    const created = await createToken(db, body.name, parseScopes(body.scopes));
    // Who made a token is an audit fact: logged like a template registration.
    log.info({ token: created.name, scopes: created.scopes, by: actor(req) }, 'API token created');
    return reply.status(201).send(created);
  });

  app.post('/v1/tokens/:name/revoke', async (req) => {
    const revoked = await revokeToken(db, (req.params as { name: string }).name);
    log.info({ token: revoked.name, by: actor(req) }, 'API token revoked');
    return revoked;
  });
}
