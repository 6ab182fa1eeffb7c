import type { Command } from 'commander';
import { loadConfig, type WeftConfig } from '../shared/config.js';
import { configuredLogger } from '../shared/logger.js';
import { connectStore } from '../ops/connect-store.js';
import type { Database } from '../store/database.js';
import { createToken, listTokens, parseScopes, revokeToken, type TokenRow } from '../store/tokens.js';

type Out = (s: string) => void;

async function withDb<T>(config: WeftConfig, work: (db: Database) => Promise<T>): Promise<T> {
  const store = await connectStore(config, configuredLogger(config, { quiet: true }), { applicationName: 'weft-token' });
  try {
    return await work(store.db);
  } finally {
    await store.close();
  }
}

function row(t: TokenRow): string {
  const when = (d: Date | null) => (d ? d.toISOString().replace(/\.\d+Z$/, 'Z') : '-');
  return `${t.name.padEnd(20)} ${t.scopes.join(',').padEnd(16)} ${`${t.prefix}…`.padEnd(15)} ${when(t.created_at).padEnd(21)} ${when(t.last_used_at).padEnd(21)} ${t.revoked_at ? `revoked ${when(t.revoked_at)}` : 'live'}`;
}

/** `weft token create|list|revoke`: the API's bearer tokens, stored hashed in PostgreSQL. */
export function registerTokenCommand(program: Command, out: Out = (s) => process.stdout.write(`${s}\n`)): void {
  const token = program.command('token').description('API tokens (scopes: read < write < admin); once one exists, every API call and the dashboard need one');

  token
    .command('create')
    .description('create a token and print it (the only time it is shown)')
    .requiredOption('--name <name>', 'what the token is for, e.g. ci-deploy (logged with what it does)')
    .requiredOption('--scope <scopes...>', 'read (see), write (also create, cancel, retry tasks), admin (also register templates)')
    .action(async (opts: { name: string; scope: string[] }) => {
      const scopes = parseScopes(opts.scope);
      const created = await withDb(loadConfig(), (db) => createToken(db, opts.name, scopes));
      out(created.token);
      process.stderr.write(`weft: token ${created.name} (${created.scopes.join(', ')}) created; keep it now, it cannot be shown again\n`);
    });

  token
    .command('list')
    .description('list tokens (never the secrets)')
    .option('--all', 'include revoked tokens', false)
    .action(async (opts: { all: boolean }) => {
      const rows = await withDb(loadConfig(), (db) => listTokens(db, { includeRevoked: opts.all }));
      if (rows.length === 0) {
        out('no tokens: the API answers loopback callers without one');
        return;
      }
      out(`${'NAME'.padEnd(20)} ${'SCOPES'.padEnd(16)} ${'PREFIX'.padEnd(15)} ${'CREATED'.padEnd(21)} ${'LAST USED'.padEnd(21)} STATE`);
      for (const t of rows) out(row(t));
    });

  token
    .command('revoke')
    .description('revoke a token by name; requests with it fail from then on')
    .argument('<name>', 'the token name (or id)')
    .action(async (name: string) => {
      const t = await withDb(loadConfig(), (db) => revokeToken(db, name));
      out(`revoked ${t.name}`);
    });
}
