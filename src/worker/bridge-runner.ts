import type { BridgeSettings, HandlerDependencies } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import type { ClaimedStep } from '../store/events.js';
import type { BridgeResult, BridgeRuntime, NativeBridge } from '../bridge/types.js';
import { loadHandlerDir } from './handler-registry.js';
import { handlerStepJson, type RunOutcome, type StepRunner } from './runner.js';
import { traceBridgePhases, tracing, type BridgePhases } from '../telemetry/index.js';

let openRunners = 0;

/** Steps a worker runs at once unless told otherwise (`weft worker --concurrency`). */
export const DEFAULT_CONCURRENCY = 32;
/** How often the same handler's blocking of the event loop is logged at most. */
const LOOP_BLOCKED_LOG_EVERY_MS = 60_000;

/**
 * Python, Ruby, or TypeScript through the native bridge: the step is
 * serialised once, crosses the addon's call path (breaker check, then a
 * thread of the runtime's pool or Python's event loop for python and ruby,
 * the JS thread itself for typescript) and comes back as JSON text that is
 * stored as is. `settings` (from `loadConfig().bridge`) go to the runtime's
 * breaker and limits; its pool gets `settings.threads` threads, by default
 * the worker's `concurrency`. `dependencies` say where Python and Ruby
 * handlers find their own packages (a virtualenv, a Gemfile).
 */
export async function createBridgeRunner(
  runtime: BridgeRuntime,
  handlersDir: string,
  log: Logger,
  bridge?: NativeBridge,
  settings: BridgeSettings = {},
  concurrency = DEFAULT_CONCURRENCY,
  dependencies: Partial<HandlerDependencies> = {},
): Promise<BridgeRunner> {
  const b = bridge ?? (await import('../bridge/index.js')).openBridge();
  const threads = settings.threads ?? concurrency;
  const pool: BridgeSettings = { ...settings, threads, maxStuck: settings.maxStuck ?? Math.max(1, Math.floor(threads / 4)) };
  let keys: string[];
  let asyncKeys: string[] = [];
  if (runtime === 'typescript') {
    const registry = await loadHandlerDir(handlersDir);
    keys = (await b.registerTypescriptHandlers(Object.fromEntries(registry.keys().map((k) => [k, registry.get(k)!])) as never)).handlers;
  } else {
    // Sized before it loads, so its threads start with the interpreter.
    b.configure(runtime, pool);
    const { pythonVenv, bundleGemfile } = dependencies;
    ({ handlers: keys, asyncHandlers: asyncKeys } = await b.load(runtime, { handlersDir, pythonVenv, bundleGemfile }));
  }
  openRunners++;
  const runner = new BridgeRunner(b, runtime, keys, runtime === 'typescript' || asyncKeys.length ? undefined : threads);
  runner.configure(pool);
  runner.logEvents(log);
  const uses = runtime === 'python' ? { virtualenv: dependencies.pythonVenv } : runtime === 'ruby' ? { gemfile: dependencies.bundleGemfile } : {};
  log.info({ runtime, handlers: keys.length, async_handlers: asyncKeys.length, settings: b.stats(runtime).config, ...uses }, 'bridge runtime loaded');
  return runner;
}

function toOutcome(r: BridgeResult): RunOutcome {
  if (r.ok) return { ok: true, result: undefined, json: r.json };
  return { ok: false, error: { ...r.error } };
}

export class BridgeRunner implements StepRunner {
  private closed = false;
  /** The bridge's call key of each step in flight, for cancel(). */
  private readonly calls = new Map<string, number>();
  private nextKey = 1;

  /**
   * @param capacity handlers it can run at once, when fewer than the
   * worker's concurrency: python and ruby with only plain handlers run as
   * many as their pool has threads; Python's async handlers and typescript
   * handlers need no thread each (undefined).
   */
  constructor(
    private readonly bridge: NativeBridge,
    readonly runtime: BridgeRuntime,
    private readonly keys: string[],
    readonly capacity?: number,
  ) {}

  /** Logs what the bridge reports about its handlers (stuck ones, a blocked event loop), never per step. */
  logEvents(log: Logger): void {
    const lastBlocked = new Map<string, number>();
    this.bridge.onEvent((event, runtime, detail) => {
      if (runtime !== this.runtime) return;
      if (event === 'loop_blocked') {
        const handler = /by handler "([^"]*)"/.exec(detail)?.[1] ?? '';
        const now = Date.now();
        if (now - (lastBlocked.get(handler) ?? -Infinity) < LOOP_BLOCKED_LOG_EVERY_MS) return;
        lastBlocked.set(handler, now);
        log.warn({ runtime, handler }, detail);
      } else if (event === 'stuck') {
        log.warn({ runtime }, `a handler is stuck: ${detail}`);
      } else if (event === 'recovered') {
        log.info({ runtime }, detail);
      } else {
        log.error({ runtime }, detail);
      }
    });
  }

  handlerKeys(): string[] {
    return this.keys;
  }

  /** Breaker thresholds and the runtime's limits; fields left out keep their value. */
  configure(settings: BridgeSettings): void {
    this.bridge.configure(this.runtime, settings);
  }

  /**
   * Runs the step through `call`, the bridge's fast path: a short python or
   * ruby handler, or any synchronous typescript handler, is answered without
   * a thread hand-off back to the event loop; the rest resolves later.
   */
  run(step: ClaimedStep): Promise<RunOutcome> {
    return tracing.enabled ? this.runTraced(step) : this.callBridge(step);
  }

  private callBridge(step: ClaimedStep): Promise<RunOutcome> {
    const key = this.nextKey++;
    const r = this.bridge.call(this.runtime, {
      handler: step.handler,
      payload: handlerStepJson(step),
      timeoutMs: step.timeout_ms,
      key,
    });
    if (!(r instanceof Promise)) return Promise.resolve(toOutcome(r));
    this.calls.set(step.id, key);
    return r.then((res) => {
      if (this.calls.get(step.id) === key) this.calls.delete(step.id);
      return toOutcome(res);
    });
  }

  /** Its task was cancelled: the bridge drops the call if queued, interrupts it if running, and `run` answers `cancelled`. */
  cancel(stepId: string): boolean {
    const key = this.calls.get(stepId);
    if (key === undefined) return false;
    return this.bridge.cancel(this.runtime, key);
  }

  /**
   * `run`, with the call's bridge phases for its trace. The bridge keeps
   * per-runtime histograms, not per-call timings, so a call's phases are the
   * change in each phase's sum across the call: exact when the call was the
   * only one through this runtime meanwhile, left out when another one
   * overlapped it.
   */
  private async runTraced(step: ClaimedStep): Promise<RunOutcome> {
    const before = this.phaseSums();
    const outcome = await this.callBridge(step);
    const after = this.phaseSums();
    if (before && after && after.count - before.count === 1) {
      const ms = (k: keyof BridgePhases) => (after[k] - before[k]) / 1e6;
      traceBridgePhases(step, { serialise: ms('serialise'), queueWait: ms('queueWait'), handler: ms('handler'), return: ms('return') });
    }
    return outcome;
  }

  private phaseSums(): (BridgePhases & { count: number }) | undefined {
    try {
      const h = this.bridge.stats(this.runtime).histograms;
      return { serialise: h.serialise.sumNs, queueWait: h.queueWait.sumNs, handler: h.run.sumNs, return: h.return.sumNs, count: h.return.count };
    } catch {
      return undefined;
    }
  }

  isBroken(): boolean {
    return this.bridge.isBroken(this.runtime);
  }

  onBroken(listener: (reason: string) => void): void {
    this.bridge.onBroken((runtime, reason) => runtime === this.runtime && listener(reason));
  }

  stats(): unknown {
    return this.bridge.stats(this.runtime);
  }

  /** The interpreters are per process: the last runner to close drains the bridge. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (--openRunners === 0) await this.bridge.shutdown({ drainMs: 5_000 });
  }
}
