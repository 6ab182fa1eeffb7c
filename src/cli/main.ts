import { Command, CommanderError, Option } from 'commander';
import { loadConfig, processEnvironment } from '../shared/config.js';
import { configuredLogger } from '../shared/logger.js';
import { RUNTIMES } from '../shared/runtimes.js';
import { WeftError } from '../shared/errors.js';
import { settingsHelp } from '../shared/settings.js';
import { packageVersion } from '../shared/paths.js';
import { integer, port } from './options.js';
import { runValidate } from './validate.js';
import { runMigrate } from './migrate.js';
import { runOrchestrator } from '../ops/orchestrator-process.js';
import { runWorker } from '../ops/worker-process.js';
import { runTask } from './run.js';
import { registerClusterCommand } from './cluster.js';
import { registerBenchCommand } from './bench.js';
import { registerTokenCommand } from './token.js';
import { registerDashboardCommand } from './dashboard.js';
import { registerControlCommands } from './control.js';
import { registerTaskCommands } from './task.js';
import { registerTaskSubmitCommand } from './tasks.js';
import { registerTemplatesCommand } from './templates.js';
import { addJsonEverywhere, errorDocument, hintAfterErrors, wantsJson } from './cli-output.js';
import { registerScheduleCommands } from './schedules.js';
import { startTracing, stopTracing } from '../telemetry/index.js';

/** Commands whose process runs tasks (or steps): they trace when OTEL_EXPORTER_OTLP_ENDPOINT or WEFT_OTEL=1 says so. */
const TRACED_COMMANDS = new Set(['orchestrator', 'worker', 'run', 'cluster', 'bench', 'dashboard']);

const program = new Command();
program
  .hook('preAction', async (_program, action) => {
    if (!TRACED_COMMANDS.has(action.name())) return;
    // Named as the process's logger is: weft-orchestrator, weft-worker-python, ...
    const runtime = action.name() === 'worker' ? (action.opts() as { runtime?: string }).runtime : undefined;
    const service = runtime ? `weft-worker-${runtime}` : `weft-${action.name()}`;
    if (await startTracing({ service, log: configuredLogger(loadConfig(), { name: service }), env: processEnvironment() })) {
      // A process that ends on its own (bench, a finished run) sends what it buffered first.
      process.once('beforeExit', () => void stopTracing());
    }
  })
  .name('weft')
  .description('A durable DAG workflow engine with TypeScript, Python and Ruby step handlers')
  .exitOverride()
  .configureOutput({
    // With --json an error is one JSON document on stdout (below), not text.
    outputError: (str, write) => {
      if (!wantsJson(process.argv)) write(str);
    },
  })
  .version(packageVersion(), '-V, --version', 'print the version of weft')
  .addHelpText(
    'after',
    () =>
      `\nEnvironment (docs/operations.md explains each):\n${settingsHelp()}\n\nExit codes: 0 done, 1 failed (a failed or cancelled task, bad input), 3 still running when\n--wait gave up, 70 a worker whose runtime broke, 130 a second signal while shutting down.\n`,
  );

program
  .command('validate')
  .description('check template files (or directories of them); exits non-zero listing every problem')
  .argument('<paths...>', 'template files or directories')
  .option('--json', 'print one JSON document: { ok, templates, problems }', false)
  .action(async (paths: string[], opts: { json: boolean }) => {
    process.exitCode = await runValidate(paths, { out: (s) => process.stdout.write(`${s}\n`), err: (s) => process.stderr.write(`${s}\n`), json: opts.json });
  });

program
  .command('migrate')
  .description('bring the database schema up to date (every weft process also does this at start)')
  .option('--json', 'print { applied, functions, current, where }', false)
  .action(async (opts: { json: boolean }) => {
    const config = loadConfig();
    process.exitCode = await runMigrate(config, configuredLogger(config), opts.json);
  });

program
  .command('orchestrator')
  .description('run an orchestrator: HTTP API, task creation, retries and the sweeps')
  .option('--port <port>', 'HTTP port', port, 8080)
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--templates <dir>', 'register every template under this directory at start')
  .option('--insecure', 'allow a non-loopback --host without any API token (weft token create)', false)
  .action(async (opts: { port: number; host: string; templates?: string; insecure: boolean }) => {
    const config = loadConfig();
    await runOrchestrator(config, configuredLogger(config, { name: 'weft-orchestrator' }), opts);
  });

program
  .command('worker')
  .description('run a worker for one runtime')
  .addOption(new Option('--runtime <runtime>', 'handler runtime').choices(RUNTIMES).default('native'))
  .requiredOption('--handlers <dir>', '(required) directory of handler modules for that runtime')
  .option('--namespaces <list>', 'comma-separated namespaces to serve (default: every namespace with steps of this runtime)')
  .option(
    '--concurrency <n>',
    'steps run at once (Python and Ruby: also the size of their thread pool, unless WEFT_BRIDGE_THREADS says otherwise)',
    integer(1, 10_000),
    32,
  )
  .option('--port <port>', 'HTTP port for /health and /metrics (default: none)', port)
  .action(async (opts: { runtime: string; handlers: string; namespaces?: string; concurrency: number; port?: number }) => {
    const config = loadConfig();
    await runWorker(config, configuredLogger(config, { name: `weft-worker-${opts.runtime}` }), opts);
  });

program
  .command('run')
  .description('submit a task; with --wait, show each step as it finishes and the results')
  .argument('<template>', 'NAMESPACE/NAME[@VERSION]')
  .option('--context <json>', 'the task input as JSON', '{}')
  .option('--wait', 'wait for the task to end; exit non-zero if it fails', false)
  .option('--at <time>', 'start at this time (RFC 3339 with its zone, e.g. 2026-12-24T09:00:00Z); the task is pending until then')
  .option('--in <duration>', 'start this long from now (e.g. 90s, 15m, 2h, 3d)')
  .option('--json', 'print the final task as JSON', false)
  .option('--timeout <ms>', 'how long --wait waits', integer(1), 120_000)
  .option('--templates <dir>', 'in-process mode: templates to register', 'templates')
  .option('--handlers <dir>', 'in-process mode: directory with one sub-directory of handlers per runtime', 'handlers')
  .option('--ui', 'in-process mode: serve the dashboard on 127.0.0.1 and keep it up after the task until Ctrl-C', false)
  .option('--port <port>', 'with --ui: HTTP port', port, 8080)
  .action(async (template: string, opts) => {
    // Exit now: a handler still running when --wait gave up must not keep the process alive.
    const code = await runTask(loadConfig(), template, opts);
    await stopTracing();
    process.exit(code);
  });

registerClusterCommand(program);
registerBenchCommand(program);
registerTokenCommand(program);
registerDashboardCommand(program);
registerControlCommands(program);
registerScheduleCommands(program);
registerTaskSubmitCommand(registerTaskCommands(program));
registerTemplatesCommand(program);
addJsonEverywhere(program);
hintAfterErrors(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // --help and --version end here too, successfully.
    if (err.exitCode === 0) process.exit(0);
    if (wantsJson(process.argv)) process.stdout.write(`${JSON.stringify(errorDocument(err))}\n`);
    process.exit(err.exitCode);
  }
  if (wantsJson(process.argv)) {
    process.stdout.write(`${JSON.stringify(errorDocument(err))}\n`);
  } else if (err instanceof WeftError) {
    process.stderr.write(`weft: ${err.message}\n`);
  } else {
    process.stderr.write(`weft: ${(err as Error)?.stack ?? String(err)}\n`);
  }
  process.exit(process.exitCode && process.exitCode !== 0 ? process.exitCode : 1);
});
