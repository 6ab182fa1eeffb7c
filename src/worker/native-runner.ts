import type { ClaimedStep } from '../store/events.js';
import { describeThrown } from '../core/thrown.js';
import type { HandlerRegistry } from './handler-registry.js';
import { toHandlerStep, type RunOutcome, type StepErrorRecord, type StepRunner } from './runner.js';

/**
 * The native path: TypeScript handlers called directly by the worker host,
 * no bridge. It is the baseline every bridge overhead is measured against.
 *
 * A step past its timeout_ms is reported as a retryable timeout at once; a
 * JavaScript handler cannot be interrupted, so its eventual result is
 * ignored. A step whose task is cancelled ({@link cancel}) is answered
 * `cancelled` at once and its handler's `step.signal` is aborted, so a
 * handler that passes it on (fetch, timers) or checks it stops its work too.
 */
export class NativeRunner implements StepRunner {
  readonly runtime = 'native';
  /** Steps in flight: their handler's AbortController. */
  private readonly inFlight = new Map<string, AbortController>();

  constructor(private readonly registry: HandlerRegistry) {}

  handlerKeys(): string[] {
    return this.registry.keys();
  }

  async run(step: ClaimedStep): Promise<RunOutcome> {
    const handler = this.registry.get(step.handler);
    if (!handler) {
      return failure(
        'HandlerNotFound',
        `no native handler "${step.handler}" is registered in this worker (step ${step.name}); known: ${this.registry.keys().join(', ') || 'none'}. ` +
          "Add it to a module under --handlers, or fix the step's handler key",
        true,
        'handler_not_found',
      );
    }
    let timer: NodeJS.Timeout | undefined;
    const abort = new AbortController();
    this.inFlight.set(step.id, abort);
    const cancelled = new Promise<never>((_, reject) => {
      abort.signal.addEventListener('abort', () => reject(new StepCancelledError()), { once: true });
    });
    try {
      const value = await Promise.race([
        Promise.resolve().then(() => handler({ ...toHandlerStep(step), signal: abort.signal })),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new StepTimeoutError(step)), step.timeout_ms);
        }),
        cancelled,
      ]);
      return toJsonResult(step.handler, value);
    } catch (err) {
      if (err instanceof StepTimeoutError) return failure(err.name, err.message, false, 'timeout');
      if (err instanceof StepCancelledError) return failure(err.name, err.message, true, 'cancelled');
      return fromThrown(err);
    } finally {
      clearTimeout(timer);
      if (this.inFlight.get(step.id) === abort) this.inFlight.delete(step.id);
    }
  }

  /** Its task was cancelled: abort the handler's `step.signal`; `run` answers `cancelled` at once. */
  cancel(stepId: string): boolean {
    const abort = this.inFlight.get(stepId);
    if (!abort) return false;
    this.inFlight.delete(stepId);
    abort.abort(new StepCancelledError());
    return true;
  }

  isBroken(): boolean {
    return false;
  }

  async close(): Promise<void> {}
}

class StepTimeoutError extends Error {
  override name = 'StepTimeoutError';
  constructor(step: ClaimedStep) {
    super(`handler "${step.handler}" of step ${step.name} ran past its timeout_ms (${step.timeout_ms} ms); it will be retried`);
  }
}

/** What a cancelled step answers, in every runtime: class `Cancelled`, permanent. */
class StepCancelledError extends Error {
  override name = 'Cancelled';
  constructor() {
    super('the task was cancelled');
  }
}

function failure(cls: string, message: string, permanent: boolean, kind: StepErrorRecord['kind'], backtrace: string[] = []): RunOutcome {
  return { ok: false, error: { language: 'typescript', class: cls, message, backtrace, permanent, kind } };
}

/** A thrown value as a stored error: class, message, stack; PermanentError (or `permanent: true`) is not retried. */
export function fromThrown(err: unknown): RunOutcome {
  const t = describeThrown(err);
  return failure(t.class, t.message, t.permanent, 'raised', t.backtrace);
}

/**
 * Check a handler's return value is JSON. `undefined` becomes null and a
 * bigint its decimal string (weft's convention for integers past 2^53);
 * anything else that JSON cannot carry (NaN and ±Infinity included, which
 * JSON.stringify would silently turn into null) is a permanent error naming
 * the type and where it is in the value.
 */
export function toJsonResult(handlerKey: string, value: unknown): RunOutcome {
  try {
    const text = JSON.stringify(value === undefined ? null : value, (_k, v) => {
      if (typeof v === 'bigint') return v.toString();
      if (notJson(v)) throw new TypeError(notJson(v)!);
      return v;
    });
    return { ok: true, result: undefined, json: text };
  } catch (err) {
    const at = firstNotJson(value);
    return failure(
      'InvalidReturn',
      `handler "${handlerKey}" returned a value that is not JSON (${(err as Error).message}${at ? ` at ${at}` : ''}); ` +
        'return objects, arrays, strings, finite numbers, booleans or null',
      true,
      'invalid_return',
    );
  }
}

/** What JSON cannot carry about `v` itself, or undefined. */
function notJson(v: unknown): string | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : `the number ${v}`;
  if (typeof v === 'function' || typeof v === 'symbol') return `a ${typeof v}`;
  if (v instanceof Map || v instanceof Set) return `a ${v.constructor.name}`;
  return undefined;
}

/** The path (`$.a[2].b`) of the first value JSON cannot carry, searched breadth-first without recursion. */
function firstNotJson(root: unknown): string | undefined {
  const queue: Array<[unknown, string]> = [[root, '$']];
  const seen = new Set<object>();
  for (let i = 0; i < queue.length; i++) {
    const [v, path] = queue[i]!;
    if (notJson(v)) return path;
    if (v === null || typeof v !== 'object' || seen.has(v)) continue;
    seen.add(v);
    const entries: Array<[string, unknown]> = Array.isArray(v)
      ? v.map((x, j) => [`[${j}]`, x])
      : Object.entries(v).map(([k, x]) => [/^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`, x]);
    for (const [suffix, child] of entries) queue.push([child, path + suffix]);
  }
  return undefined;
}
