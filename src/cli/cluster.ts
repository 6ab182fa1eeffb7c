/** `weft cluster start|stop|status`: arguments only; the cluster itself is src/ops/cluster.ts. */
import type { Command } from 'commander';
import { loadConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { ConfigError } from '../shared/errors.js';
import { clusterStatus, parseWorkers, startDetached, startForeground, stopCluster, type StartOptions } from '../ops/cluster.js';
import { integer, port } from './options.js';

/** Add `weft cluster start|stop|status` to the CLI. */
export function registerClusterCommand(program: Command): void {
  const cluster = program.command('cluster').description('run a local cluster of orchestrators and workers (state and logs under WEFT_HOME/cluster)');
  cluster
    .command('start')
    .description('start the cluster; returns once every process is healthy')
    .option('--orchestrators <n>', 'orchestrator processes', integer(1, 64), 2)
    .option('--workers <spec>', 'worker processes per runtime', 'native=2,python=2,ruby=2,typescript=2')
    .option('--backend <backend>', 'messaging: pg | rabbitmq', 'pg')
    .option('--base-port <port>', 'orchestrators on base.., workers on base+20 (native), +120 (ruby), +220 (python), +320 (typescript)', port, 8080)
    .option('--concurrency <n>', 'steps each worker runs at once', integer(1, 10_000), 32)
    .option('--timeout <ms>', 'how long each process may take to become healthy', integer(1), 120_000)
    .option('--foreground', 'supervise in this terminal instead of a detached supervisor', false)
    .action(async (o: StartOptions) => {
      if (o.backend !== 'pg' && o.backend !== 'rabbitmq') throw new ConfigError(`--backend "${o.backend}" is not a messaging backend; use pg or rabbitmq`);
      parseWorkers(o.workers);
      const config = loadConfig();
      if (o.foreground) await startForeground(config, createLogger({ name: 'weft-cluster' }), o);
      else process.exitCode = await startDetached(config, o);
    });
  cluster
    .command('stop')
    .description('stop every cluster process (by pid) and the supervisor')
    .action(async () => {
      process.exitCode = await stopCluster(loadConfig());
    });
  cluster
    .command('status')
    .description('show each process with its pid, URL and health; exit 3 unless all are healthy')
    .option('--json', 'print the cluster state as JSON', false)
    .action(async (o: { json: boolean }) => {
      process.exitCode = await clusterStatus(loadConfig(), o.json);
    });
}
