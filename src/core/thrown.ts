/**
 * What a TypeScript handler threw, as weft stores a handler's error: class,
 * message, backtrace and whether to retry. One conversion for handlers called
 * directly by the worker (NativeRunner) and through the bridge's typescript
 * target, so the same throw is stored the same way by both.
 *
 * Error class names shared by every runtime (Python's and Ruby's SDKs raise
 * exceptions of these names too): `HandlerNotFound`, `InvalidReturn`,
 * `Cancelled`.
 */
export interface ThrownError {
  class: string;
  message: string;
  backtrace: string[];
  /** An `Error` named `PermanentError`, or with `permanent: true`: not retried. */
  permanent: boolean;
}

export function describeThrown(e: unknown): ThrownError {
  if (e instanceof Error) {
    const backtrace = (e.stack ?? '')
      .split('\n')
      .slice(1)
      .map((l) => l.trim().replace(/^at /, ''))
      .filter(Boolean);
    const permanent = (e as { permanent?: unknown }).permanent === true || e.name === 'PermanentError';
    return { class: e.name || e.constructor.name, message: e.message, backtrace, permanent };
  }
  return { class: 'NonErrorThrown', message: `the handler threw a non-Error value (${typeof e}): ${String(e)}`, backtrace: [], permanent: false };
}
