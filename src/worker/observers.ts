import type { Logger } from '../shared/logger.js';
import type { FinishedStep } from '../store/events.js';
import type { FinishItem } from '../store/finish.js';
import { traceStepDropped, traceStepRan, traceStepRunning, traceStepsClaimed, traceStepsFinished, tracing } from '../telemetry/index.js';
import type { WorkerEvents } from './worker-events.js';
import type { Finish } from './step-outcome.js';

/**
 * The observers every worker has, each subscribed to the loop's typed
 * events (worker-events.ts) instead of living in the loop.
 */

/** A worker's counters for /health, /metrics and weft.processes.info (a type, so it reads as a plain record). */
export type WorkerCounts = {
  claimed: number;
  succeeded: number;
  failed: number;
  retried: number;
  lost: number;
  cancelled: number;
  given_back: number;
};

/** Count every step by what became of it, and log failures (retried: warn; failed for good: error) and losses. */
export function countSteps(events: WorkerEvents, counts: WorkerCounts, log: Logger): void {
  events.on('claimed', (steps) => {
    counts.claimed += steps.length;
  });
  events.on('finished', (finish, recorded) => countFinished(counts, log, finish, recorded));
  events.on('givenBack', () => {
    counts.given_back++;
  });
  events.on('dropped', () => {
    counts.cancelled++;
  });
  events.on('lost', ({ step }) => {
    counts.lost++;
    log.warn(
      { task_id: step.task_id, step: step.name, attempt: step.attempt },
      "the step was no longer this run's when it finished (cancelled, or its lease expired and it was taken); result discarded",
    );
  });
}

function countFinished(counts: WorkerCounts, log: Logger, finish: Finish, f: FinishedStep): void {
  const { step } = finish;
  if (f.state === 'complete') {
    counts.succeeded++;
    return;
  }
  counts.failed++;
  const error = finish.outcome.ok ? undefined : finish.outcome.error;
  if (f.state === 'waiting_retry') {
    counts.retried++;
    log.warn({ task_id: step.task_id, step: step.name, attempt: step.attempt, retry_at: f.run_after, error: error?.message }, 'step failed; retrying');
  } else if (f.state === 'error') {
    const item = finish.item as Extract<FinishItem, { ok: false }>;
    log.error(
      { task_id: step.task_id, step: step.name, attempt: step.attempt, reason: item.reason, error, duration_ms: Math.round(item.durationMs) },
      'step failed; task failed',
    );
  }
}

/**
 * OpenTelemetry spans of each step (see src/telemetry): claim, run, finish.
 * Every handler checks the switch, so tracing turned on or off later applies
 * at once; with it off an event costs a property read.
 */
export function traceSteps(events: WorkerEvents): void {
  events.on('claimed', (steps, startedAt, how) => {
    if (tracing.enabled) traceStepsClaimed(steps, startedAt, how);
  });
  events.on('running', (step) => {
    if (tracing.enabled) traceStepRunning(step);
  });
  events.on('ran', (step, outcome) => {
    if (tracing.enabled) traceStepRan(step, outcome);
  });
  events.on('dropped', (step) => {
    if (tracing.enabled) traceStepDropped(step);
  });
  events.on('committed', (batch, outcomes, startedAt) => {
    if (tracing.enabled)
      traceStepsFinished(
        batch.map((f) => f.step),
        outcomes,
        startedAt,
      );
  });
}
