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
  /** Tasks one API token (or loopback address, while no token exists) may create per minute. */
  taskRateLimitPerMinute: number;
  pool: {
    max: number;
    /** Log a warning when getting a connection takes longer than this. */
    slowAcquireThresholdMs: number;
  };
  /** How long a worker owns a claimed step without a heartbeat. */
  leaseMs: number;
  /** Fallback polling period for queues and the orchestrator's sweeper. */
  pollIntervalMs: number;
  /** An `enqueued` step older than this with no claim is dispatched again. */
  redispatchAfterMs: number;
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
    apiToken: env.WEFT_API_TOKEN || undefined,
    taskRateLimitPerMinute: intFrom(env, 'WEFT_TASK_RATE_LIMIT', 6_000, 1),
    pool: {
      max: intFrom(env, 'WEFT_DB_POOL_MAX', 10, 1),
      slowAcquireThresholdMs: intFrom(env, 'WEFT_SLOW_ACQUIRE_THRESHOLD_MS', 50),
    },
    leaseMs: intFrom(env, 'WEFT_LEASE_MS', 30_000, 100),
    pollIntervalMs: intFrom(env, 'WEFT_POLL_INTERVAL_MS', 1_000, 10),
    redispatchAfterMs: intFrom(env, 'WEFT_REDISPATCH_AFTER_MS', 30_000, 100),
  };
}
