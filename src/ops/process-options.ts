import type { WeftConfig } from '../shared/config.js';
import type { OrchestratorOptions } from '../orchestration/orchestrator.js';
import type { WorkerOptions } from '../worker/worker.js';

/** What an orchestrator needs besides its settings: its connections and its name. */
type OrchestratorParts = Pick<OrchestratorOptions, 'db' | 'bus' | 'log' | 'processId'>;

/**
 * An orchestrator's options from the settings: the one place config becomes
 * orchestrator options, so `weft orchestrator`, `weft run` and `weft dashboard`
 * cannot drift apart (they did: the last two once ignored WEFT_REDISPATCH_AFTER_MS).
 */
export function orchestratorOptions(config: WeftConfig, parts: OrchestratorParts): OrchestratorOptions {
  return {
    ...parts,
    pollIntervalMs: config.pollIntervalMs,
    leaseMs: config.leaseMs,
    maxLosses: config.maxLosses,
    redispatchAfterMs: config.redispatchAfterMs,
    retentionMs: config.retentionMs,
    vacuumIntervalMs: config.vacuumIntervalMs,
  };
}

/** What a worker needs besides its settings: connections, runner, name and what it serves. */
type WorkerParts = WorkerOptions extends infer O ? (O extends unknown ? Omit<O, 'leaseMs'> : never) : never;

/** A worker's options from the settings: the one place config becomes worker options (`weft worker`, `weft run`, `weft dashboard`). */
export function workerOptions(config: WeftConfig, parts: WorkerParts): WorkerOptions {
  return { ...parts, leaseMs: config.leaseMs };
}
