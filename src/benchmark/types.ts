/**
 * The shape of `bench/results/<timestamp>-<backend>/percentiles.json`.
 * Everything the Markdown report says is derived from this document, so a
 * report can be regenerated at any time with `weft bench --report DIR`.
 */
import type { Summary } from './stats.js';

import type { MessagingBackend as Backend } from '../shared/backends.js';
import type { Runtime } from '../shared/runtimes.js';

export type { Backend, Runtime };

export interface PhaseBreakdown {
  /** created_at → first step enqueued (task creation + first dispatch). */
  create_ms: number;
  /** Σ enqueued → started over the steps (queue wait + claim). */
  queue_ms: number;
  /** Σ started → finished (handler + result write). */
  execute_ms: number;
  /** Σ previous step finished → next step enqueued (result processing + dispatch). */
  orchestrate_ms: number;
  /** last step finished → task completed_at (finalisation). */
  finalize_ms: number;
  /** client-observed − server created→completed (HTTP, wake-up, JSON). */
  client_ms: number;
  /** POST /v1/tasks round trip as the client saw it (overlaps create_ms; absent in older files). */
  post_ms?: number;
}

export interface RunResult {
  run: number;
  /** Client-side latency: POST /v1/tasks sent → long-poll returned. */
  client: Summary;
  /** Server-side created_at → completed_at of the same tasks. */
  server: Summary;
  /** Raw client samples, ms, in the order they were taken. */
  samples_ms: number[];
  server_ms: number[];
  /** Samples whose results were checked and found correct (always = n, or the bench failed). */
  verified: number;
  /** Median of each phase over the samples (sequential scenarios only). */
  phases_p50?: PhaseBreakdown;
}

export interface ScenarioResult {
  id: string;
  /** The reference's name for the same measurement, e.g. tier1_core/workflow/linear_rust. */
  reference_name: string;
  tier: 1 | 2 | 3 | 4 | 5;
  label: string;
  runtime: Runtime;
  pattern: string;
  steps: number;
  sequential_stages: number;
  runs: RunResult[];
}

export interface ThroughputResult {
  topology: '1+1' | 'cluster';
  /**
   * linear: 4-step chains kept `in_flight` through POST /v1/tasks (absent in older files);
   * single: single-step tasks kept `in_flight` the same way;
   * batch_single: single-step tasks sent through POST /v1/tasks/batch, `in_flight` batches at once.
   */
  scenario?: 'linear' | 'single' | 'batch_single';
  run: number;
  orchestrators: number;
  workers: number;
  in_flight: number;
  duration_s: number;
  tasks: number;
  steps: number;
  steps_per_s: number;
  tasks_per_s: number;
  /** Latency of the tasks completed during the window (client side). */
  latency: Summary;
  verified: number;
  /**
   * Process CPU (user + system) per step during the window: orchestrators,
   * workers and every process of the PostgreSQL server, and their sum. Absent
   * when the server's processes are not visible (a remote server).
   */
  cpu_ms_per_step?: { total: number; orchestrators: number; workers: number; postgres: number };
  /** Why cpu_ms_per_step is absent: the server's processes are not visible from here (server-meter.ts). */
  cpu_unavailable?: string;
  /** Bytes of WAL the whole PostgreSQL server wrote during the window, per step (absent in older files). */
  wal_bytes_per_step?: number;
}

export interface BenchDocument {
  schema: 'weft-bench/1';
  generated_at: string;
  backend: Backend;
  quick: boolean;
  machine: {
    cpu_model: string;
    cores: number;
    memory_gb: number;
    os: string;
    /** 1-minute load average at the start and the end of the backend's runs (other work on the machine). */ load_avg?: [number, number];
  };
  versions: { node: string; postgresql: string | null; rabbitmq: string | null; python: string | null; ruby: string | null };
  config: {
    orchestrators: number;
    workers: Record<string, number>;
    samples: number;
    warmup: number;
    runs: number;
    database: 'embedded' | 'url';
    messaging: Backend;
    log_level: string;
    worker_concurrency: number;
    throughput_in_flight: number;
    throughput_seconds: number;
    /** Samples taken round-robin over the scenarios (absent in older files = one scenario after the other). */
    interleaved?: boolean;
    scenarios: string[];
  };
  git: { commit: string | null; branch: string | null; dirty: boolean | null };
  scenarios: ScenarioResult[];
  throughput: ThroughputResult[];
  /** The I/O-bound tier; absent in older files and when it was not run. */
  io?: IoSection;
  /** Wall time of the whole backend run, seconds. */
  elapsed_s: number;
}

/** One variant of the I/O tier at one task count in one round. */
export interface IoRound {
  round: number;
  /** First POST /v1/tasks sent → last of the tasks observed done, ms. */
  wall_ms: number;
  /** tasks / wall time. */
  tasks_per_s: number;
  /** Run time of each task's step (the task view's step duration_ms: started → finished, the wait plus overhead), ms. */
  step: Summary;
  /** Tasks whose result was checked and found right (always = tasks, or the bench failed). */
  verified: number;
}

export interface IoResult {
  /** e.g. python_async_sleep */
  variant: string;
  label: string;
  /** sleep: the step waits; http: the step GETs the bench's local test server, which answers after the wait. */
  kind: 'sleep' | 'http';
  runtime: Runtime;
  /** Tasks created at once. */
  tasks: number;
  rounds: IoRound[];
}

/** The I/O-bound tier (issue 16): many tasks at once whose one step mostly waits, one worker per runtime. */
export interface IoSection {
  /** How long each step waits (or the test server takes to answer), ms. */
  wait_ms: number;
  /** The task counts measured, e.g. [32, 256]. */
  tasks: number[];
  rounds: number;
  /** --concurrency of each worker (one per runtime). */
  worker_concurrency: number;
  results: IoResult[];
}
