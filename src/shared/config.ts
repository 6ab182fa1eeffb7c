import { resolve } from 'node:path';
import { ConfigError } from './errors.js';

/**
 * Every setting weft reads from the environment, in one place. All names
 * share the WEFT_ prefix; `weft --help` and docs/operations.md list them.
 */
export interface WeftConfig {
  /** PostgreSQL URL; unset means "start the embedded PostgreSQL under home". */
  databaseUrl: string | undefined;
  /** Directory for the embedded database, cluster state and logs. */
  home: string;
  messaging: 'pg' | 'rabbitmq';
  amqpUrl: string;
  logLevel: string;
  /** Base URL of an orchestrator for `weft run`; unset = run one in-process. */
  orchestratorUrl: string | undefined;
  /** Bearer token `weft run` sends to that orchestrator (`weft token create`). */
  apiToken: string | undefined;
  /**
   * Tasks one API token may create (and retries it may start) per minute; while no token exists, one
   * non-loopback address (`--insecure`). Loopback callers of an open API are not limited.
   */
  taskRateLimitPerMinute: number;
  /** The HTTP API's limits and open-mode protections (docs/operations.md, "Limits"). */
  api: ApiSettings;
  pool: {
    max: number;
    /** Log a warning when getting a connection takes longer than this. */
    slowAcquireThresholdMs: number;
    /** Opening a connection fails after this long (a server that does not answer). */
    connectTimeoutMs: number;
    /** A statement whose answer takes longer fails, and its connection is dropped (a frozen server); maintenance is exempt. */
    queryTimeoutMs: number;
  };
  /** How long a worker's steps survive without a heartbeat of the worker (it heartbeats every second). */
  leaseMs: number;
  /** Fallback polling period for queues and the orchestrator's sweeper. */
  pollIntervalMs: number;
  /** Broker only: an `enqueued` step older than this with no claim is dispatched again. */
  redispatchAfterMs: number;
  /** A step that lost its worker this many times fails instead of running again. */
  maxLosses: number;
  /** Finished tasks are deleted this long after they ended; 0 keeps them forever. */
  retentionMs: number;
  /** With autovacuum off on the server, how often weft vacuums and analyses its tables. */
  vacuumIntervalMs: number;
  /** The native bridge's settings for the runtime a worker serves; unset = the bridge's default. */
  bridge: BridgeSettings;
  /** Where Python and Ruby handlers find their own packages. */
  dependencies: HandlerDependencies;
}

/**
 * The team's own packages for Python and Ruby handlers
 * (docs/handlers-python-ruby.md, "Your packages"). Paths are absolute.
 */
export interface HandlerDependencies {
  /** WEFT_PYTHON_VENV, else VIRTUAL_ENV (what `activate` sets): the virtualenv whose site-packages Python handlers import from. */
  pythonVenv: string | undefined;
  /** WEFT_BUNDLE_GEMFILE, else BUNDLE_GEMFILE: the Gemfile whose bundle Ruby handlers use (Bundler.setup before they load). */
  bundleGemfile: string | undefined;
}

/** The HTTP API's limits (WEFT_API_*, WEFT_TEMPLATE_RATE_LIMIT); {@link DEFAULT_API_SETTINGS} holds the defaults. */
export interface ApiSettings {
  /** WEFT_API_BODY_LIMIT: the largest request body accepted, in bytes (413 above). */
  bodyLimitBytes: number;
  /** WEFT_API_BODY_BUDGET: bytes of request bodies read and handled at once; more wait, then get 503. */
  bodyBudgetBytes: number;
  /** WEFT_API_REQUEST_TIMEOUT_MS: a request's headers and body must arrive within this (headers within a third of it). */
  requestTimeoutMs: number;
  /** WEFT_API_MAX_CONNECTIONS: open connections (event streams included); more are closed at once. */
  maxConnections: number;
  /** WEFT_API_ALLOWED_HOSTS: host names an open API (no token yet) answers besides loopback names and its own address. */
  allowedHosts: string[];
  /** WEFT_TEMPLATE_RATE_LIMIT: template registrations per token (per address while open) per minute. */
  templateRateLimitPerMinute: number;
  /** WEFT_TASK_BATCH_LIMIT: the most tasks one POST /v1/tasks/batch may hold. */
  taskBatchLimit: number;
}

/**
 * Why these defaults: a task's context travels in its body and is stored as JSONB; the API holds
 * several copies of a body while it handles it (the text, the parsed value, the statement's
 * parameter), about five times its size. 2 MiB is Temporal's payload limit too, so a workflow that
 * fits there fits here. 16 MiB of bodies at once: 64 concurrent 2 MiB bodies raised an orchestrator's
 * memory by ~160 MB (four 31 MiB bodies, before these limits: by ~480 MB).
 */
export const DEFAULT_API_SETTINGS: Readonly<ApiSettings> = Object.freeze({
  bodyLimitBytes: 2 * 1024 * 1024,
  bodyBudgetBytes: 16 * 1024 * 1024,
  requestTimeoutMs: 30_000,
  maxConnections: 2_048,
  allowedHosts: [],
  templateRateLimitPerMinute: 600,
  // 1,000 small tasks are ~100 KiB of JSON, well inside the body limit, and one statement of ~10 ms.
  taskBatchLimit: 1_000,
});

/** Tasks one token may create per minute by default: far above one client's needs, a brake on a runaway loop. */
export const DEFAULT_TASK_RATE_LIMIT = 60_000;

/**
 * A duration setting: `500ms`, `30s`, `15m`, `12h`, `7d`, or a number of
 * milliseconds; empty or `0` means off.
 *
 * @example
 *   parseDuration('WEFT_RETENTION', '7d') // 604800000
 */
export function parseDuration(name: string, raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '' || raw.trim() === '0') return 0;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(raw);
  if (!m) throw new ConfigError(`${name}=${JSON.stringify(raw)} is not a duration; use e.g. 30s, 15m, 12h or 7d (or a number of milliseconds)`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * unit);
}

/**
 * Settings of the native bridge for one runtime: the bridge's `configure()`
 * takes them (its `RuntimeConfig` is this type) and the worker reads them
 * from the environment. Every field is optional; a field left out keeps the
 * bridge's value, whose default is given below.
 */
export interface BridgeSettings {
  /** WEFT_BREAKER_FAILURE_THRESHOLD: consecutive runtime failures (timeouts, a stuck interpreter) that open the breaker (default 5). */
  failureThreshold?: number;
  /** WEFT_BREAKER_SUCCESS_THRESHOLD: successful half-open probes that close it (default 2). */
  successThreshold?: number;
  /** WEFT_BREAKER_COOLDOWN_MS: how long it stays open before it lets a probe through (default 5000 ms). */
  cooldownMs?: number;
  /** WEFT_BREAKER_SLOW_CALL_MS: an answer slower than this counts as a runtime failure (default 0 = off). */
  slowCallMs?: number;
  /** WEFT_BREAKER_HALF_OPEN_PROBES: probes allowed in flight while half-open (default 1). */
  halfOpenMaxProbes?: number;
  /** WEFT_BRIDGE_GRACE_MS: after a timeout or cancel, how long the handler may take to return before it is declared stuck (default 2000 ms). */
  graceMs?: number;
  /**
   * WEFT_BRIDGE_THREADS: python and ruby: threads that run plain (`def`,
   * Ruby) handlers at once (default: the worker's --concurrency). The pool
   * only grows. Python's `async def` handlers need none: they run on one
   * event loop, as many at once as the worker's concurrency allows.
   */
  threads?: number;
  /**
   * WEFT_BRIDGE_MAX_STUCK: handlers stuck at once (they ignored a timeout
   * or cancel past the grace period) that make the worker recycle its
   * process (exit 70 after draining; default: a quarter of the threads, at
   * least 1). Fewer are reported and their threads replaced.
   */
  maxStuck?: number;
  /**
   * WEFT_PYTHON_LOOP_BLOCKED_MS: an `async def` handler that keeps Python's
   * event loop from running others for longer than this is reported by name
   * (default 100 ms).
   */
  loopBlockedMs?: number;
  /** WEFT_BRIDGE_QUEUE_CAPACITY: bounded queue size; a full queue answers `queue_full` (default 4096). */
  queueCapacity?: number;
  /**
   * WEFT_BRIDGE_SYNC_WAIT_US: python and ruby, the bridge's `call()` only:
   * how long (µs) the JS thread may wait for a short call's result before the
   * call goes on asynchronously (default 300; 0 = never wait; at most 1 s).
   * It waits only when the runtime has no other call in flight and the
   * handler's recent runs fit in the budget; a result that arrives in time
   * skips a thread wake-up and an event-loop round trip.
   */
  syncWaitUs?: number;
  /** WEFT_BRIDGE_IDLE_SPIN_US: how long (µs) the runtime's thread looks for the next call before it sleeps (default 0; at most 10 ms). */
  idleSpinUs?: number;
}

const BRIDGE_ENV: ReadonlyArray<[keyof BridgeSettings, string, number, number]> = [
  // field, variable, minimum, maximum
  ['failureThreshold', 'WEFT_BREAKER_FAILURE_THRESHOLD', 1, 1_000_000],
  ['successThreshold', 'WEFT_BREAKER_SUCCESS_THRESHOLD', 1, 1_000_000],
  ['cooldownMs', 'WEFT_BREAKER_COOLDOWN_MS', 0, 86_400_000],
  ['slowCallMs', 'WEFT_BREAKER_SLOW_CALL_MS', 0, 86_400_000],
  ['halfOpenMaxProbes', 'WEFT_BREAKER_HALF_OPEN_PROBES', 1, 1_000_000],
  ['graceMs', 'WEFT_BRIDGE_GRACE_MS', 0, 86_400_000],
  ['queueCapacity', 'WEFT_BRIDGE_QUEUE_CAPACITY', 1, 1_000_000],
  ['syncWaitUs', 'WEFT_BRIDGE_SYNC_WAIT_US', 0, 1_000_000],
  ['idleSpinUs', 'WEFT_BRIDGE_IDLE_SPIN_US', 0, 10_000],
  ['threads', 'WEFT_BRIDGE_THREADS', 1, 4_096],
  ['maxStuck', 'WEFT_BRIDGE_MAX_STUCK', 1, 4_096],
  ['loopBlockedMs', 'WEFT_PYTHON_LOOP_BLOCKED_MS', 1, 86_400_000],
];

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  return optionalInt(env, name, min, Number.MAX_SAFE_INTEGER, `${fallback}`) ?? fallback;
}

function optionalInt(env: NodeJS.ProcessEnv, name: string, min: number, max: number, dflt = "the bridge's default"): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not an integer ${range}; unset it to use ${dflt}`);
  }
  return n;
}

function bridgeSettings(env: NodeJS.ProcessEnv): BridgeSettings {
  const out: BridgeSettings = {};
  for (const [field, name, min, max] of BRIDGE_ENV) {
    const v = optionalInt(env, name, min, max);
    if (v !== undefined) out[field] = v;
  }
  return out;
}

function apiSettings(env: NodeJS.ProcessEnv): ApiSettings {
  const d = DEFAULT_API_SETTINGS;
  const bodyLimitBytes = intFrom(env, 'WEFT_API_BODY_LIMIT', d.bodyLimitBytes, 1_024);
  const bodyBudgetBytes = intFrom(env, 'WEFT_API_BODY_BUDGET', Math.max(d.bodyBudgetBytes, bodyLimitBytes), 1_024);
  if (bodyBudgetBytes < bodyLimitBytes) {
    throw new ConfigError(
      `WEFT_API_BODY_BUDGET=${bodyBudgetBytes} is smaller than WEFT_API_BODY_LIMIT=${bodyLimitBytes}: a body of the limit could never be read; raise the budget or lower the limit`,
    );
  }
  return {
    bodyLimitBytes,
    bodyBudgetBytes,
    requestTimeoutMs: intFrom(env, 'WEFT_API_REQUEST_TIMEOUT_MS', d.requestTimeoutMs, 1_000),
    maxConnections: intFrom(env, 'WEFT_API_MAX_CONNECTIONS', d.maxConnections, 1),
    allowedHosts: (env.WEFT_API_ALLOWED_HOSTS ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
    templateRateLimitPerMinute: intFrom(env, 'WEFT_TEMPLATE_RATE_LIMIT', d.templateRateLimitPerMinute, 1),
    taskBatchLimit: intFrom(env, 'WEFT_TASK_BATCH_LIMIT', d.taskBatchLimit, 1),
  };
}

/** The first of `names` set to a non-empty value, as an absolute path (relative to the working directory). */
function pathFrom(env: NodeJS.ProcessEnv, ...names: string[]): string | undefined {
  for (const name of names) {
    const raw = env[name]?.trim();
    if (raw) return resolve(raw);
  }
  return undefined;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): WeftConfig {
  const messaging = env.WEFT_MESSAGING ?? 'pg';
  if (messaging !== 'pg' && messaging !== 'rabbitmq') {
    throw new ConfigError(`WEFT_MESSAGING=${JSON.stringify(messaging)} is not a messaging backend; use "pg" or "rabbitmq"`);
  }
  return {
    databaseUrl: env.WEFT_DATABASE_URL || undefined,
    home: resolve(env.WEFT_HOME ?? '.weft'),
    messaging,
    amqpUrl: env.WEFT_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    logLevel: env.WEFT_LOG_LEVEL ?? 'info',
    orchestratorUrl: env.WEFT_ORCHESTRATOR_URL || undefined,
    apiToken: env.WEFT_API_TOKEN || undefined,
    taskRateLimitPerMinute: intFrom(env, 'WEFT_TASK_RATE_LIMIT', DEFAULT_TASK_RATE_LIMIT, 1),
    api: apiSettings(env),
    pool: {
      max: intFrom(env, 'WEFT_DB_POOL_MAX', 10, 1),
      slowAcquireThresholdMs: intFrom(env, 'WEFT_SLOW_ACQUIRE_THRESHOLD_MS', 50),
      connectTimeoutMs: intFrom(env, 'WEFT_DB_CONNECT_TIMEOUT_MS', 5_000, 100),
      queryTimeoutMs: intFrom(env, 'WEFT_DB_QUERY_TIMEOUT_MS', 30_000, 100),
    },
    leaseMs: intFrom(env, 'WEFT_LEASE_MS', 30_000, 100),
    pollIntervalMs: intFrom(env, 'WEFT_POLL_INTERVAL_MS', 1_000, 10),
    redispatchAfterMs: intFrom(env, 'WEFT_REDISPATCH_AFTER_MS', 30_000, 100),
    maxLosses: intFrom(env, 'WEFT_STEP_MAX_LOSSES', 5, 1),
    retentionMs: parseDuration('WEFT_RETENTION', env.WEFT_RETENTION),
    vacuumIntervalMs: intFrom(env, 'WEFT_VACUUM_INTERVAL_MS', 30_000, 1_000),
    bridge: bridgeSettings(env),
    dependencies: {
      pythonVenv: pathFrom(env, 'WEFT_PYTHON_VENV', 'VIRTUAL_ENV'),
      bundleGemfile: pathFrom(env, 'WEFT_BUNDLE_GEMFILE', 'BUNDLE_GEMFILE'),
    },
  };
}
