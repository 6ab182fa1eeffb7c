/**
 * What a handler's return value means.
 *
 * Handlers in every language return plain JSON. Two shapes are reserved and
 * marked by the key `"$weft"`, so that a normal value can never be mistaken
 * for one by accident:
 *
 *   decision: { "$weft": "decision", "steps": ["a", "b"] }
 *   batches:  { "$weft": "batches",  "cursors": [ ...any JSON... ] }
 *
 * A decision step must return a decision, a batchable step must return
 * batches, and any other step must not return a `$weft` object at all. A
 * mismatch is a bug in the handler, so `OutcomeError` is permanent: retrying
 * the same code would return the same thing.
 */
import { WeftError } from '../shared/errors.js';
import type { StepType } from './template/types.js';

export interface DecisionOutcome {
  $weft: 'decision';
  steps: string[];
}
export interface BatchesOutcome {
  $weft: 'batches';
  cursors: unknown[];
}

export type HandlerOutcome = { kind: 'value'; value: unknown } | { kind: 'decision'; steps: string[] } | { kind: 'batches'; cursors: unknown[] };

/** A handler returned something its step type cannot accept. Permanent: do not retry. */
export class OutcomeError extends WeftError {
  override name = 'OutcomeError';
  readonly permanent = true;
  constructor(message: string) {
    super('outcome_invalid', message);
  }
}

/**
 * The decision outcome: run these downstream steps (template step names,
 * each a direct child of the decision step). An empty list runs none.
 *
 * @example
 *   return decision(amount > 1000 ? ['manager_approval', 'finance_review'] : ['auto_approve']);
 */
export function decision(steps: string[]): DecisionOutcome {
  return { $weft: 'decision', steps: [...steps] };
}

/**
 * The batches outcome: one worker step per cursor (any JSON value, handed to
 * the worker as its `batch.cursor`). An empty list creates one no-op worker.
 *
 * @example
 *   return batches([{ offset: 0, limit: 200 }, { offset: 200, limit: 200 }]);
 */
export function batches(cursors: unknown[]): BatchesOutcome {
  return { $weft: 'batches', cursors: [...cursors] };
}

const MARKER = '$weft';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function checkKeys(v: Record<string, unknown>, allowed: string[], what: string): void {
  const extra = Object.keys(v).filter((k) => !allowed.includes(k));
  if (extra.length) {
    throw new OutcomeError(
      `${what} outcome has unexpected key(s) ${extra.map((k) => `"${k}"`).join(', ')}; ` +
        `expected exactly ${allowed.map((k) => `"${k}"`).join(' and ')}. Build it with the SDK helper ${what === 'decision' ? 'decision([...])' : 'batches([...])'}`,
    );
  }
}

/**
 * Read a handler's return value in the light of its step type.
 * Throws OutcomeError (permanent) when the value does not fit.
 *
 * @example
 *   interpretResult('decision', { $weft: 'decision', steps: ['auto_approve'] }) // { kind: 'decision', steps: ['auto_approve'] }
 *   interpretResult('standard', 42)                                              // { kind: 'value', value: 42 }
 *   interpretResult('batchable', 42)                                             // throws OutcomeError
 */
export function interpretResult(stepType: StepType, value: unknown): HandlerOutcome {
  const marked = isPlainObject(value) && MARKER in value;
  const marker = marked ? (value as Record<string, unknown>)[MARKER] : undefined;

  if (stepType === 'decision') {
    if (!marked || marker !== 'decision') {
      throw new OutcomeError(
        `a decision step must return a decision outcome { "$weft": "decision", "steps": [...] }, but returned ${describe(value)}; ` +
          `return decision(["step_a", ...]) from the SDK (an empty list runs no branch)`,
      );
    }
    const v = value as Record<string, unknown>;
    checkKeys(v, [MARKER, 'steps'], 'decision');
    const steps = v.steps;
    if (!Array.isArray(steps) || !steps.every((s) => typeof s === 'string')) {
      throw new OutcomeError(
        `decision outcome "steps" must be an array of step names (strings), but was ${describe(steps)}; ` +
          `return decision(["step_a", ...]) naming direct children of the decision step`,
      );
    }
    return { kind: 'decision', steps: [...(steps as string[])] };
  }

  if (stepType === 'batchable') {
    if (!marked || marker !== 'batches') {
      throw new OutcomeError(
        `a batchable step must return a batches outcome { "$weft": "batches", "cursors": [...] }, but returned ${describe(value)}; ` +
          `return batches([cursor, ...]) from the SDK (an empty list means nothing to process)`,
      );
    }
    const v = value as Record<string, unknown>;
    checkKeys(v, [MARKER, 'cursors'], 'batches');
    if (!Array.isArray(v.cursors)) {
      throw new OutcomeError(`batches outcome "cursors" must be an array, but was ${describe(v.cursors)}; return batches([cursor, ...])`);
    }
    return { kind: 'batches', cursors: [...v.cursors] };
  }

  if (marked) {
    throw new OutcomeError(
      `a ${stepType} step returned a ${typeof marker === 'string' ? `"${marker}"` : 'reserved'} outcome ${describe(value)}, ` +
        `but only decision steps may return decisions and only batchable steps may return batches; ` +
        `return a plain value, or change the step's type in the template (the "$weft" key is reserved)`,
    );
  }
  return { kind: 'value', value };
}
