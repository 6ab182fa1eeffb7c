/** `weft bench`: arguments only; the benchmark itself is src/bench/runner.ts. */
import { join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../shared/errors.js';
import { packageRoot } from '../shared/paths.js';
import { runBench } from '../bench/runner.js';
import { IO_CONCURRENCY, IO_TASKS } from '../bench/io.js';
import { integer, integerList } from './options.js';

/** Add `weft bench` to the CLI. */
export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description("end-to-end latency benchmark in the seed's tiers on a local cluster; writes bench/results/<timestamp>-<backend>/")
    .option('--backend <backend>', 'pg | rabbitmq | both', 'pg')
    .option('--runs <n>', 'independent runs, the cluster restarted between them', integer(1))
    .option('--samples <n>', 'samples per scenario after the warm-up', integer(1))
    .option('--warmup <n>', 'warm-up tasks per scenario (not measured)', integer(0))
    .option('--scenarios <list>', 'comma-separated scenario ids, tier1..tier5, throughput or io (default: all)')
    .option('--quick', '10 samples, one run, a 3 s throughput window, one I/O round', false)
    .option('--base-port <port>', 'cluster base port (default 8080, moving up by 1000 past busy ports)', integer(1))
    .option('--orchestrators <n>', 'orchestrators in the cluster', integer(1), 2)
    .option('--workers-per-runtime <n>', 'workers per runtime in the cluster', integer(1), 2)
    .option('--concurrency <n>', 'steps each worker runs at once', integer(1), 32)
    .option('--in-flight <n>', 'concurrent tasks in the throughput scenario', integer(1), 64)
    .option('--throughput-seconds <s>', 'throughput window per topology', integer(1))
    .option(
      '--batch-tasks <n>',
      'single-step tasks sent through POST /v1/tasks/batch after the 1+1 throughput window (default 10,000; --quick 2,000; 0 skips)',
      integer(0),
    )
    .option(
      '--history-steps <n>',
      'finished steps written into the tables before linear is measured again (default 1,000,000; --quick 100,000; 0 skips)',
      integer(0),
    )
    .option('--io-rounds <n>', 'rounds of the I/O-bound tier (default 3; --quick 1)', integer(1))
    .option(
      '--io-tasks <list>',
      `tasks created at once in the I/O-bound tier, each from 1 to ${IO_CONCURRENCY} (its workers' concurrency; default ${IO_TASKS.join(',')})`,
      integerList(1, IO_CONCURRENCY),
    )
    .option('--no-interleave', 'measure the scenarios one after the other instead of interleaving their samples')
    .option('--out <dir>', 'results directory', join(packageRoot(), 'bench', 'results'))
    .option('--write-docs', 'also write docs/benchmarks.md (the latest full report)', false)
    .option('--profile', 'only profile one single-step task: where its wall time goes, in one process and over REST (--samples each, default 200)', false)
    .option('--report <dirs...>', 'only regenerate report.md (and, with --write-docs, docs/benchmarks.md) from existing percentiles.json')
    .action(async (o: Record<string, any>) => {
      if (!['pg', 'rabbitmq', 'both'].includes(o.backend)) throw new ConfigError(`--backend "${o.backend}" is not one of pg, rabbitmq, both`);
      const quick = Boolean(o.quick);
      process.exitCode = await runBench({
        backend: o.backend,
        runs: o.runs ?? (quick ? 1 : 2),
        samples: o.samples ?? (o.profile ? 200 : quick ? 10 : 50),
        warmup: o.warmup ?? (quick ? 3 : 5),
        scenarios: o.scenarios,
        quick,
        basePort: o.basePort,
        orchestrators: o.orchestrators,
        workersPerRuntime: o.workersPerRuntime,
        concurrency: o.concurrency,
        inFlight: o.inFlight,
        throughputSeconds: o.throughputSeconds ?? (quick ? 3 : 10),
        batchTasks: o.batchTasks ?? (quick ? 2_000 : 10_000),
        historySteps: o.historySteps ?? (quick ? 100_000 : 1_000_000),
        ioRounds: o.ioRounds ?? (quick ? 1 : 3),
        ioTasks: o.ioTasks ?? [...IO_TASKS],
        interleave: o.interleave !== false,
        out: o.out,
        writeDocs: Boolean(o.writeDocs),
        report: o.report,
        profile: Boolean(o.profile),
      });
    });
}
