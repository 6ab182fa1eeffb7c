/**
 * The catalogue of every `WEFT_*` environment variable: its default and what
 * it does, in one list. `weft --help` prints it, and a unit test checks that
 * every variable the source reads is here and that the README and
 * docs/operations.md list each one, so the three never drift apart.
 *
 * Reading and checking the values is `loadConfig`'s job (config.ts); this is
 * the documentation of them.
 */
export interface Setting {
  name: string;
  /** The default, as a person would write it; "unset" when there is none. */
  default: string;
  meaning: string;
}

export const SETTINGS: readonly Setting[] = [
  { name: 'WEFT_DATABASE_URL', default: 'unset', meaning: 'PostgreSQL to use; unset = the embedded PostgreSQL under WEFT_HOME' },
  { name: 'WEFT_HOME', default: '.weft', meaning: 'embedded database, logs, cluster state' },
  { name: 'WEFT_EMBEDDED_PG_PORT', default: '54329, or the last port used', meaning: 'port of the embedded PostgreSQL' },
  { name: 'WEFT_MESSAGING', default: 'pg', meaning: 'pg (the steps table is the queue, LISTEN/NOTIFY wake-ups) or rabbitmq' },
  { name: 'WEFT_AMQP_URL', default: 'amqp://guest:guest@127.0.0.1:5672', meaning: 'RabbitMQ' },
  { name: 'WEFT_QUEUE_PREFIX', default: 'weft', meaning: 'prefix of RabbitMQ queue names' },
  { name: 'WEFT_LOG_LEVEL', default: 'info', meaning: 'trace | debug | info | warn | error; nothing per step above debug' },
  { name: 'WEFT_LOG_FORMAT', default: 'pretty on a terminal', meaning: 'json: JSON lines even on a terminal' },
  { name: 'WEFT_LEASE_MS', default: '30000', meaning: 'a worker silent this long loses its running steps (they run again, no attempt used)' },
  { name: 'WEFT_STEP_MAX_LOSSES', default: '5', meaning: 'a step that lost its worker this many times fails with WorkerLostError' },
  { name: 'WEFT_POLL_INTERVAL_MS', default: '1000', meaning: 'fallback poll and sweep period' },
  { name: 'WEFT_REDISPATCH_AFTER_MS', default: '30000', meaning: 'RabbitMQ: an enqueued step unclaimed this long is published again' },
  { name: 'WEFT_DB_POOL_MAX', default: '10', meaning: 'connections per process' },
  { name: 'WEFT_SLOW_ACQUIRE_THRESHOLD_MS', default: '50', meaning: 'warn when a caller waits longer for a connection' },
  { name: 'WEFT_DB_CONNECT_TIMEOUT_MS', default: '5000', meaning: 'opening a connection fails after this long' },
  {
    name: 'WEFT_DB_QUERY_TIMEOUT_MS',
    default: '30000',
    meaning: 'a statement whose answer takes longer fails and its connection is dropped (maintenance excepted)',
  },
  { name: 'WEFT_RETENTION', default: 'unset', meaning: 'delete tasks this long after they ended: 7d, 12h, 30m; unset keeps them' },
  { name: 'WEFT_VACUUM_INTERVAL_MS', default: '30000', meaning: "with the server's autovacuum off, how often weft vacuums its tables" },
  {
    name: 'WEFT_ORCHESTRATOR_URL',
    default: 'unset',
    meaning:
      'weft run / task / cancel / retry / templates push / token talk to this orchestrator; unset = the database (`weft run`: an orchestrator in-process)',
  },
  { name: 'WEFT_API_TOKEN', default: 'unset', meaning: 'bearer token those commands send (weft token create)' },
  {
    name: 'WEFT_TASK_RATE_LIMIT',
    default: '60000',
    meaning:
      'tasks one API token may create, and retries it may start, per minute, in each orchestrator (and this / WEFT_TASK_BATCH_LIMIT task batches); loopback callers of an open API are not limited',
  },
  { name: 'WEFT_TASK_BATCH_LIMIT', default: '1000', meaning: 'the most tasks one POST /v1/tasks/batch (one commit) may hold' },
  { name: 'WEFT_TEMPLATE_RATE_LIMIT', default: '600', meaning: 'template registrations one API token may make per minute, in each orchestrator' },
  { name: 'WEFT_API_BODY_LIMIT', default: '2097152 (2 MiB)', meaning: 'largest request body in bytes; larger ones get 413' },
  {
    name: 'WEFT_API_BODY_BUDGET',
    default: '16777216 (16 MiB)',
    meaning: 'bytes of request bodies one orchestrator reads and handles at once; more wait up to 10 s, then get 503 with Retry-After',
  },
  {
    name: 'WEFT_API_REQUEST_TIMEOUT_MS',
    default: '30000',
    meaning: "a request's headers and body must arrive within this (headers within a third of it); long-polls and event streams are not limited",
  },
  { name: 'WEFT_API_MAX_CONNECTIONS', default: '2048', meaning: 'open HTTP connections per orchestrator (event streams included); more are closed at once' },
  {
    name: 'WEFT_API_ALLOWED_HOSTS',
    default: 'unset',
    meaning: 'comma-separated host names an API with no token answers besides loopback names and its own address (DNS rebinding protection)',
  },
  {
    name: 'WEFT_BREAKER_FAILURE_THRESHOLD',
    default: '5',
    meaning:
      'consecutive failures of a Python/Ruby/TypeScript runtime itself (timeouts, a stuck interpreter; never a handler that raises) that open its breaker',
  },
  { name: 'WEFT_BREAKER_COOLDOWN_MS', default: '5000', meaning: 'how long an open breaker refuses calls before it lets a probe through' },
  { name: 'WEFT_BREAKER_SUCCESS_THRESHOLD', default: '2', meaning: 'successful probes that close a half-open breaker' },
  { name: 'WEFT_BREAKER_HALF_OPEN_PROBES', default: '1', meaning: 'probes allowed in flight while half-open' },
  { name: 'WEFT_BREAKER_SLOW_CALL_MS', default: '0 (off)', meaning: 'an answer slower than this counts as a runtime failure' },
  {
    name: 'WEFT_BRIDGE_GRACE_MS',
    default: '2000',
    meaning: 'after a timeout or cancel, how long a Python/Ruby/TypeScript handler may take to return before it is declared stuck and loses its slot',
  },
  {
    name: 'WEFT_BRIDGE_THREADS',
    default: "the worker's --concurrency",
    meaning: 'Python/Ruby: threads that run plain (def, Ruby) handlers at once; Python async def handlers need none',
  },
  {
    name: 'WEFT_BRIDGE_MAX_STUCK',
    default: 'a quarter of the threads, at least 1',
    meaning: 'handlers stuck at once that make the worker drain and exit 70 for its supervisor to restart it; fewer are reported and replaced',
  },
  {
    name: 'WEFT_PYTHON_LOOP_BLOCKED_MS',
    default: '100',
    meaning: 'an async def handler that keeps the event loop from running others this long is named in a warning',
  },
  { name: 'WEFT_BRIDGE_QUEUE_CAPACITY', default: '4096', meaning: 'calls a runtime may hold queued; more are refused (queue_full, no attempt used)' },
  {
    name: 'WEFT_BRIDGE_SYNC_WAIT_US',
    default: '300',
    meaning: 'how long the worker may wait for a short Python/Ruby step before it lets it finish asynchronously (0 = never)',
  },
  { name: 'WEFT_BRIDGE_IDLE_SPIN_US', default: '0', meaning: 'how long an idle handler thread looks for the next step before it sleeps' },
  { name: 'WEFT_BRIDGE_PATH', default: 'build/Release/weft_bridge.node', meaning: 'the native addon to load' },
  {
    name: 'WEFT_OTEL',
    default: 'unset',
    meaning:
      '1: send OpenTelemetry traces (one per task) to OTEL_EXPORTER_OTLP_ENDPOINT, default http://localhost:4318; 0: never; unset: trace when an endpoint is set (docs/tracing.md)',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    default: 'unset',
    meaning: 'OTLP/HTTP collector for traces; setting it turns tracing on (the standard OTEL_* variables apply too)',
  },
  {
    name: 'WEFT_EXAMPLES_DATA_DIR',
    default: 'handlers/data',
    meaning:
      "the only folder the shipped CSV examples read: context.csv_file_path names a file inside it; the default is the data folder beside the example handlers; weft bench sets it to each run's folder",
  },
  {
    name: 'WEFT_PYTHON_VENV',
    default: 'VIRTUAL_ENV, else unset',
    meaning:
      "virtualenv whose site-packages Python handlers import from, ahead of the embedded Python's own site-packages (which stay visible); made by the same Python version",
  },
  {
    name: 'WEFT_BUNDLE_GEMFILE',
    default: 'BUNDLE_GEMFILE, else unset',
    meaning: 'Gemfile of the gems Ruby handlers use: Bundler.setup runs before the handlers load, so only its gems (path gems included) can be required',
  },
  { name: 'WEFT_PYTHON_HOME', default: 'found by the build', meaning: 'weft bench: PYTHONHOME for the Python workers it starts' },
  {
    name: 'WEFT_BENCH_IO_ORIGIN',
    default: 'unset',
    meaning:
      'weft bench sets it for the workers of its I/O tier: http://127.0.0.1:PORT of its test server, the only place their HTTP handlers (bench/io/) may fetch',
  },
];

/** The catalogue as aligned text, for `weft --help`. */
export function settingsHelp(): string {
  const width = Math.max(...SETTINGS.map((s) => s.name.length)) + 2;
  return SETTINGS.map((s) => `  ${s.name.padEnd(width)}${s.meaning} (default: ${s.default})`).join('\n');
}

/** The catalogue as a Markdown table, as pasted in the README and docs/operations.md. */
export function settingsMarkdown(): string {
  const rows = SETTINGS.map((s) => `| \`${s.name}\` | ${s.default} | ${s.meaning} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
