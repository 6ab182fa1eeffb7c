/** `weft cluster start|stop|status`: arguments only; the cluster itself is src/ops/cluster.ts. */
import { Option, type Command } from 'commander';
import { loadConfig } from '../shared/config.js';
import { configuredLogger } from '../shared/logger.js';
import { BACKENDS } from '../shared/backends.js';
import { RUNTIME_TABLE } from '../shared/runtimes.js';
import { clusterStatus, parseWorkers, startDetached, startForeground, stopCluster, type StartOptions } from '../ops/cluster.js';
import { integer, port } from './options.js';

/** Add `weft cluster start|stop|status` to the CLI. */
export function registerClusterCommand(program: Command): void {
  const cluster = program.command('cluster').description('run a local cluster of orchestrators and workers (state and logs under WEFT_HOME/cluster)');
  cluster
    .command('start')
    .description('start the cluster; returns once every process is healthy')
    .option('--orchestrators <n>', 'orchestrator processes', integer(1, 64), 2)
    .option('--workers <spec>', 'worker processes per runtime', RUNTIME_TABLE.map((r) => `${r.name}=2`).join(','))
    .addOption(new Option('--backend <backend>', 'messaging backend').choices(BACKENDS).default('pg'))
    .option(
      '--base-port <port>',
      `orchestrators on base.., workers on ${RUNTIME_TABLE.map((r) => `base+${r.clusterPortOffset} (${r.name})`).join(', ')}`,
      port,
      8080,
    )
    .option('--concurrency <n>', 'steps each worker runs at once', integer(1, 10_000), 32)
    .option('--timeout <ms>', 'how long each process may take to become healthy', integer(1), 120_000)
    .option('--foreground', 'supervise in this terminal instead of a detached supervisor', false)
    .action(async (o: StartOptions) => {
      parseWorkers(o.workers);
      const config = loadConfig();
      if (o.foreground) await startForeground(config, configuredLogger(config, { name: 'weft-cluster' }), o);
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
