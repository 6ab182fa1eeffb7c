import type { Command } from 'commander';
import { loadConfig, type WeftConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { redactUrl } from '../shared/redact.js';
import type { TokenScope, Wire } from '../core/api-types.js';
import { connectStore } from '../ops/connect-store.js';
import { createToken, listTokens, parseScopes, revokeToken, type CreatedToken, type TokenRow } from '../store/tokens.js';
import { WeftClient } from '../client/client.js';

type Out = (s: string) => void;
type Row = Wire<TokenRow>;

/** What the token commands act on: an orchestrator's API (admin token), or a database. */
interface TokenStore {
  /** Said with every answer: a token made in one database is unknown to an orchestrator using another. */
  where: string;
  create(name: string, scopes: TokenScope[]): Promise<Wire<CreatedToken>>;
  list(all: boolean): Promise<Row[]>;
  revoke(nameOrId: string): Promise<Row>;
}

/**
 * With WEFT_ORCHESTRATOR_URL the commands go through its API (/v1/tokens,
 * WEFT_API_TOKEN must be an admin token once any token exists); otherwise
 * through WEFT_DATABASE_URL, or the embedded PostgreSQL, which they name.
 */
async function withTokenStore<T>(config: WeftConfig, work: (store: TokenStore) => Promise<T>): Promise<T> {
  if (config.orchestratorUrl) {
    const client = new WeftClient({ url: config.orchestratorUrl, token: config.apiToken });
    return work({
      where: `the orchestrator at ${client.url}`,
      create: (name, scopes) => client.createToken(name, scopes),
      list: (all) => client.listTokens({ all }),
      revoke: (nameOrId) => client.revokeToken(nameOrId),
    });
  }
  const store = await connectStore(config, createLogger({ level: process.env.WEFT_LOG_LEVEL ?? 'warn' }), { applicationName: 'weft-token' });
  const wire = <V>(v: V) => JSON.parse(JSON.stringify(v)) as Wire<V>;
  try {
    return await work({
      where:
        store.source === 'embedded'
          ? `the embedded PostgreSQL (${config.home}/pg; set WEFT_DATABASE_URL or WEFT_ORCHESTRATOR_URL to reach your orchestrator's)`
          : `the database ${redactUrl(store.db.url)}`,
      create: async (name, scopes) => wire(await createToken(store.db, name, scopes)),
      list: async (all) => wire(await listTokens(store.db, { includeRevoked: all })),
      revoke: async (nameOrId) => wire(await revokeToken(store.db, nameOrId)),
    });
  } finally {
    await store.close();
  }
}

function row(t: Row): string {
  const when = (d: string | null) => (d ? d.replace(/\.\d+Z$/, 'Z') : '-');
  return `${t.name.padEnd(20)} ${t.scopes.join(',').padEnd(16)} ${`${t.prefix}…`.padEnd(15)} ${when(t.created_at).padEnd(21)} ${when(t.last_used_at).padEnd(21)} ${t.revoked_at ? `revoked ${when(t.revoked_at)}` : 'live'}`;
}

/** `weft token create|list|revoke`: the API's bearer tokens, stored hashed in PostgreSQL. */
export function registerTokenCommand(program: Command, out: Out = (s) => process.stdout.write(`${s}\n`)): void {
  const token = program
    .command('token')
    .description(
      'API tokens (scopes: read < write < admin); once one exists, every API call and the dashboard need one. ' +
        'Through WEFT_ORCHESTRATOR_URL with an admin WEFT_API_TOKEN, else in WEFT_DATABASE_URL (or the embedded PostgreSQL)',
    );

  token
    .command('create')
    .description('create a token and print it (the only time it is shown)')
    .requiredOption('--name <name>', '(required) what the token is for, e.g. ci-deploy (logged with what it does)')
    .requiredOption('--scope <scopes...>', '(required) read (see), write (also create, cancel, retry tasks), admin (also register templates, manage tokens)')
    .option('--json', 'print the token and its row as JSON, with where it was written', false)
    .action(async (opts: { name: string; scope: string[]; json: boolean }) => {
      const scopes = parseScopes(opts.scope);
      const [created, where] = await withTokenStore(loadConfig(), async (s) => [await s.create(opts.name, scopes), s.where] as const);
      if (opts.json) {
        out(JSON.stringify({ ...created, where }, null, 2));
        return;
      }
      out(created.token);
      process.stderr.write(`weft: token ${created.name} (${created.scopes.join(', ')}) created in ${where}; keep it now, it cannot be shown again\n`);
    });

  token
    .command('list')
    .description('list tokens (never the secrets)')
    .option('--all', 'include revoked tokens', false)
    .option('--json', 'print { where, tokens }', false)
    .action(async (opts: { all: boolean; json: boolean }) => {
      const [rows, where] = await withTokenStore(loadConfig(), async (s) => [await s.list(opts.all), s.where] as const);
      if (opts.json) {
        out(JSON.stringify({ where, tokens: rows }, null, 2));
        return;
      }
      if (rows.length === 0) {
        out(`no tokens in ${where}: the API answers loopback callers without one`);
        return;
      }
      out(`tokens in ${where}:`);
      out(`${'NAME'.padEnd(20)} ${'SCOPES'.padEnd(16)} ${'PREFIX'.padEnd(15)} ${'CREATED'.padEnd(21)} ${'LAST USED'.padEnd(21)} STATE`);
      for (const t of rows) out(row(t));
    });

  token
    .command('revoke')
    .description('revoke a token by name; requests with it fail from then on')
    .argument('<name>', 'the token name (or id)')
    .option('--json', 'print the revoked token, with where', false)
    .action(async (name: string, opts: { json: boolean }) => {
      const [t, where] = await withTokenStore(loadConfig(), async (s) => [await s.revoke(name), s.where] as const);
      if (opts.json) out(JSON.stringify({ ...t, where }, null, 2));
      else out(`revoked ${t.name} in ${where}`);
    });
}
