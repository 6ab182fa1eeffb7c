import type { BridgeSettings } from '../shared/config.js';

/**
 * The typed boundary between weft's worker host and the native bridge
 * (issue 4). The worker depends only on {@link NativeBridge}, so its unit
 * tests can use a fake; {@link AddonBridge} in `./native-bridge.ts` is the one
 * implementation that loads `build/Release/weft_bridge.node`.
 */

/** A dispatch target behind the bridge. */
export type BridgeRuntime = 'python' | 'ruby' | 'typescript';

export const BRIDGE_RUNTIMES: readonly BridgeRuntime[] = ['python', 'ruby', 'typescript'];

/**
 * One step attempt to run. `payload` is the JSON of the step:
 * `{ task_id, step_id, step_name, attempt, context, inputs, dependency_results, batch }`.
 */
export interface BridgeCall {
  /** Handler key, e.g. `linear.square`. */
  handler: string;
  /** JSON text of the step (see above); passed to the handler parsed. */
  payload: string;
  /** Past this many ms the call resolves at once as a retryable `timeout`. */
  timeoutMs: number;
  /**
   * A positive integer (at most 2^53-1) naming this call for
   * {@link NativeBridge.cancel}, unique among the runtime's calls in flight;
   * leave it out when the call will never be cancelled.
   */
  key?: number;
}

/** Why a call did not produce a value. */
export type ForeignErrorKind =
  | 'raised' // the handler raised / threw
  | 'timeout' // past timeoutMs; retryable
  | 'circuit_open' // the runtime's breaker is open; retryable after backoff
  | 'invalid_return' // the handler returned something that is not JSON; permanent
  | 'handler_not_found' // no handler under that key; permanent
  | 'runtime_broken' // the runtime is stuck; this worker process should be restarted
  | 'queue_full' // too many calls in flight; retryable
  | 'not_loaded' // dispatch before load() finished
  | 'cancelled'; // cancel() settled it (its task was cancelled); permanent

/** An error as the handler's language reported it. */
export interface ForeignError {
  language: BridgeRuntime;
  /** Exception class, e.g. `ValueError`, `ArgumentError`, `TypeError`. */
  class: string;
  message: string;
  /** Most recent call first, `file:line:in method`. */
  backtrace: string[];
  /** true: do not retry (PermanentError, invalid_return, handler_not_found). */
  permanent: boolean;
  kind: ForeignErrorKind;
  /** On `circuit_open`: the runtime's last own failure, the reason the breaker opened. */
  lastFailure?: RuntimeFailure;
}

/** A failure of the runtime itself (what the circuit breaker counts). */
export interface RuntimeFailure {
  /** e.g. `HandlerTimeout`, `RuntimeBroken`, `SlowCall`. */
  class: string;
  message: string;
  kind: ForeignErrorKind;
}

/** A call's outcome. dispatch() never rejects for handler failures. */
export type BridgeResult = { ok: true; json: string } | { ok: false; error: ForeignError };

/** What {@link NativeBridge.onEvent} reports. */
export type BridgeEvent = 'stuck' | 'recovered' | 'loop_blocked' | 'loop_failed';

export interface LoadOptions {
  /** Every `*.py` / `*.rb` under these directories is loaded. */
  handlersDir: string | string[];
  /** Directory holding the SDK (`workers/python`, `workers/ruby`); defaults to the repository's. */
  sdkDir?: string;
  /** python only: a virtualenv whose site-packages go on sys.path before the handlers load (`loadConfig().dependencies`). */
  pythonVenv?: string;
  /** ruby only: a Gemfile set up with Bundler before the handlers load (`loadConfig().dependencies`). */
  bundleGemfile?: string;
}

/**
 * Circuit breaker and runtime limits; every field optional (the fields and
 * their defaults are documented on {@link BridgeSettings}, which the worker
 * fills from the environment).
 *
 * The breaker protects the runtime, not against the handler: it counts only
 * the runtime's own failures (a timeout, a broken interpreter, a call slower
 * than `slowCallMs`). A handler that raises, returns something that is not
 * JSON or is not found was answered by a healthy runtime and counts as a
 * success; `queue_full` is load and is not counted at all.
 */
export type RuntimeConfig = BridgeSettings;

/** A log2-bucketed latency histogram; bucket i counts values below `upperBoundsUs[i]` µs. */
export interface HistogramSnapshot {
  upperBoundsUs: number[];
  counts: number[];
  count: number;
  sumNs: number;
}

export interface RuntimeStats {
  dispatched: number;
  completed: number;
  failed: number;
  timedOut: number;
  rejectedByBreaker: number;
  rejectedQueueFull: number;
  inFlight: number;
  /** Handlers that returned after their call had already timed out. */
  lateResults: number;
  /** call() answered synchronously: a python/ruby result that came within syncWaitUs, or an inline typescript handler. */
  syncReturns: number;
  /** call() waited its syncWaitUs in vain and went on asynchronously. */
  syncWaitMisses: number;
  /** Handlers running now (stuck ones included). */
  running: number;
  /** Handlers that ignored a timeout or cancel past the grace period and have not returned. */
  stuck: number;
  /** Handlers ever declared stuck. */
  stuckTotal: number;
  /** python and ruby: threads that run plain handlers (stuck ones not counted). */
  threads: number;
  /** python: how often an `async def` handler blocked the event loop past loopBlockedMs, and the longest block seen. */
  loop?: { blocked: number; maxLagMs: number };
  breaker: {
    state: 'closed' | 'open' | 'half_open';
    consecutiveFailures: number;
    timesOpened: number;
    /** The runtime's last own failure since the breaker was last reset, or null. */
    lastFailure: RuntimeFailure | null;
  };
  broken: boolean;
  brokenReason: string;
  phase: 'idle' | 'loading' | 'ready' | 'failed';
  /** The settings in force (every field filled). */
  config: Required<RuntimeConfig>;
  histograms: {
    /** JS thread: copying the call out of V8 into the native job. */
    serialise: HistogramSnapshot;
    /** Queued until the runtime thread picked it up. */
    queueWait: HistogramSnapshot;
    /** The handler, including the runtime's own JSON parse and serialise. */
    run: HistogramSnapshot;
    /** Handler returned until the Promise resolved on the JS thread. */
    return: HistogramSnapshot;
  };
}

export type BridgeStats = Record<BridgeRuntime, RuntimeStats>;

/** The step a typescript-target handler gets: the same type as a native handler's (src/core/step.ts). */
import type { Step, StepHandler } from '../core/step.js';
export type BridgeStep = Step;
export type TypescriptStepHandler = StepHandler;

/**
 * The native bridge as the worker host sees it.
 *
 * @example
 * const bridge = await openBridge();
 * await bridge.load('python', { handlersDir: 'handlers/python' });
 * const r = await bridge.dispatch('python', { handler: 'linear.square', payload, timeoutMs: 30_000 });
 * if (r.ok) JSON.parse(r.json); else if (!r.error.permanent) retryLater();
 * bridge.onBroken((rt, why) => { log.error({ rt, why }); process.exit(70); });
 */
export interface NativeBridge {
  /**
   * Starts the runtime's interpreter (once per process) and loads its
   * handlers; resolves with the registered keys, and those that run on an
   * event loop instead of a thread (Python's `async def` handlers).
   */
  load(runtime: 'python' | 'ruby', opts: LoadOptions): Promise<{ handlers: string[]; asyncHandlers: string[] }>;
  /** Registers the JS handlers the `typescript` target calls (through the same native path). */
  registerTypescriptHandlers(map: Record<string, TypescriptStepHandler>): Promise<{ handlers: string[] }>;
  /**
   * Runs one call, always asynchronously: python and ruby on their
   * interpreter thread, typescript handed over through the bridge's own
   * thread. Never rejects for handler failures: resolves `{ ok: false, error }`.
   */
  dispatch(runtime: BridgeRuntime, call: BridgeCall): Promise<BridgeResult>;
  /**
   * The step path: the same call and the same results and errors as
   * {@link dispatch}, but answered synchronously when it can be. python and
   * ruby: the JS thread waits up to `syncWaitUs` for a short call on an idle
   * runtime (see {@link RuntimeConfig.syncWaitUs}), else a Promise as
   * dispatch. typescript: the handler runs inline on the JS thread (same
   * breaker, counters and timeout); a handler that returns a Promise gives a
   * Promise. Never throws or rejects for handler failures.
   *
   * @example
   * const r = bridge.call('python', { handler: 'linear.square', payload, timeoutMs: 30_000 });
   * const result = r instanceof Promise ? await r : r;
   */
  call(runtime: BridgeRuntime, call: BridgeCall): BridgeResult | Promise<BridgeResult>;
  /**
   * Settles the call made with `key` at once as a permanent `cancelled`
   * error (class `Cancelled`, "the task was cancelled"). A queued call is
   * dropped and never runs; a running python or ruby handler is interrupted
   * the way a timeout interrupts it (`weft.Cancelled` / `Weft::Cancelled` is
   * raised in it), and the runtime is marked broken if it has not returned
   * after the grace period; a typescript handler's `step.signal` is aborted
   * (calls made through `call()`) and its late result is dropped. Returns false when no call with that key is in flight (or it
   * had just finished: its own outcome is on its way).
   *
   * @example
   * const pending = bridge.call('python', { handler: 'etl.load', payload, timeoutMs: 600_000, key: 7 });
   * bridge.cancel('python', 7); // pending resolves { ok: false, error: { kind: 'cancelled', ... } }
   */
  cancel(runtime: BridgeRuntime, key: number): boolean;
  /** Breaker thresholds, grace period, queue size. */
  configure(runtime: BridgeRuntime, config: RuntimeConfig): void;
  /** Lock-free counters and histograms, per runtime. */
  stats(): BridgeStats;
  stats(runtime: BridgeRuntime): RuntimeStats;
  /** true once a handler ignored its timeout past the grace period: restart this process. */
  isBroken(runtime: BridgeRuntime): boolean;
  /** Called once per runtime that becomes broken. */
  onBroken(listener: (runtime: BridgeRuntime, reason: string) => void): void;
  /**
   * What a worker should log about its handlers: `stuck` (one ignored its
   * timeout or cancel past the grace period; its thread was replaced),
   * `recovered` (a stuck one returned), `loop_blocked` (an async Python
   * handler blocked the event loop), `loop_failed`. `detail` is a sentence.
   */
  onEvent(listener: (event: BridgeEvent, runtime: BridgeRuntime, detail: string) => void): void;
  /** Stops accepting calls and waits (bounded) for in-flight ones. Interpreters stay in the process. */
  shutdown(opts?: { drainMs?: number }): Promise<void>;
}
