import { port } from './options.js';
import type { Command } from 'commander';
import { loadConfig } from '../shared/config.js';
import { configuredLogger } from '../shared/logger.js';
import { RUNTIMES } from '../shared/runtimes.js';
import { startEmbeddedEngine } from '../ops/engine.js';
import { bindingNeedsToken, refuseOpenBinding, serveApi } from '../ops/serve-api.js';
import { onShutdownSignal } from '../ops/lifecycle.js';
import { connectStore, type Store } from '../ops/connect-store.js';

/**
 * `weft dashboard`: an orchestrator with the dashboard and a worker per
 * runtime in this process, on the embedded PostgreSQL unless
 * WEFT_DATABASE_URL is set. The quickest way to see weft in a browser.
 */
export function registerDashboardCommand(program: Command): void {
  program
    .command('dashboard')
    .description('serve the dashboard with an in-process orchestrator and a worker per runtime (the embedded default)')
    .option('--port <port>', 'HTTP port', port, 8080)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--insecure', 'allow a non-loopback address without any API token', false)
    .option('--templates <dir>', 'templates to register', 'templates')
    .option('--handlers <dir>', 'directory with one sub-directory of handlers per runtime', 'handlers')
    .option('--runtimes <list>', 'comma-separated runtimes to start workers for', RUNTIMES.join(','))
    .action(async (opts: { port: number; host: string; insecure: boolean; templates: string; handlers: string; runtimes: string }) => {
      const config = loadConfig();
      const log = configuredLogger(config, { name: 'weft-dashboard', quiet: true });
      // A non-loopback --host needs a token (or --insecure): refused before a worker or the orchestrator starts.
      let store: Store | undefined;
      if (bindingNeedsToken(opts.host, opts.insecure)) {
        store = await connectStore(config, log);
        try {
          await refuseOpenBinding(opts, store.db);
        } catch (err) {
          await store.close();
          throw err;
        }
      }
      const engine = await startEmbeddedEngine(config, log, { templates: opts.templates, handlers: opts.handlers, name: 'dashboard', store });
      let api: Awaited<ReturnType<typeof serveApi>> | undefined;
      try {
        await engine.addWorkers(
          opts.runtimes
            .split(',')
            .map((r) => r.trim())
            .filter(Boolean),
        );
        api = await serveApi({
          orchestrator: engine.orchestrator,
          db: engine.store.db,
          bus: engine.bus,
          log,
          host: opts.host,
          port: opts.port,
          insecure: opts.insecure,
          settings: config,
        });
      } catch (err) {
        await engine.stop().catch(() => undefined);
        throw err;
      }
      process.stdout.write(`weft dashboard: ${api.url}/  (database: ${engine.store.source}; Ctrl-C stops)\n`);
      const served = api;
      onShutdownSignal(log, async () => {
        await served.close();
        await engine.stop();
      });
    });
}
