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
  pool: {
    max: number;
    /** Log a warning when getting a connection takes longer than this. */
    slowAcquireThresholdMs: number;
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
}

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

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not an integer ≥ ${min}; unset it to use ${fallback}`);
  }
  return n;
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
    pool: {
      max: intFrom(env, 'WEFT_DB_POOL_MAX', 10, 1),
      slowAcquireThresholdMs: intFrom(env, 'WEFT_SLOW_ACQUIRE_THRESHOLD_MS', 50),
    },
    leaseMs: intFrom(env, 'WEFT_LEASE_MS', 30_000, 100),
    pollIntervalMs: intFrom(env, 'WEFT_POLL_INTERVAL_MS', 1_000, 10),
    redispatchAfterMs: intFrom(env, 'WEFT_REDISPATCH_AFTER_MS', 30_000, 100),
    maxLosses: intFrom(env, 'WEFT_STEP_MAX_LOSSES', 5, 1),
    retentionMs: parseDuration('WEFT_RETENTION', env.WEFT_RETENTION),
    vacuumIntervalMs: intFrom(env, 'WEFT_VACUUM_INTERVAL_MS', 30_000, 1_000),
  };
}
