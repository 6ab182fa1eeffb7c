/**
 * AddonBridge: the one implementation of {@link NativeBridge}, and the only
 * code in weft that loads the native addon (build/Release/weft_bridge.node).
 */
import { describeThrown } from '../core/thrown.js';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

import { jsonDepthProblem, MAX_JSON_DEPTH } from '../core/json-depth.js';
import { packageRoot } from '../shared/paths.js';
import { addonPath, runtimeLibrary } from './addon-files.js';
import { BridgeLoadError, HandlerLoadError } from './errors.js';
import type {
  BridgeCall,
  BridgeEvent,
  BridgeStep,
  BridgeResult,
  BridgeRuntime,
  BridgeStats,
  HistogramSnapshot,
  LoadOptions,
  NativeBridge,
  RuntimeConfig,
  RuntimeStats,
  TypescriptStepHandler,
} from './types.js';
import { BRIDGE_RUNTIMES, RUNTIME_TABLE } from '../shared/runtimes.js';

/** The addon's raw exports (native/addon.cc). Internal: use NativeBridge. */
interface NativeAddon {
  attach(runtime: number, path: string, preload: string[]): void;
  load(runtime: number, handlerDirs: string[], sdkDir: string, setupJson?: string, home?: string): Promise<string[]>;
  dispatch(runtime: number, handler: string, payload: string, timeoutMs: number, key?: number): Promise<BridgeResult>;
  call(runtime: number, handler: string, payload: string, timeoutMs: number, key?: number): BridgeResult | Promise<BridgeResult>;
  beginTypescript(handler: string, timeoutMs: number, key?: number): number | BridgeResult;
  cancel(runtime: number, key: number): boolean;
  deferTypescript(jobId: number): Promise<BridgeResult>;
  configure(runtime: number, config: RuntimeConfig): void;
  resetBreaker(runtime: number): void;
  stats(runtime: number): Omit<RuntimeStats, 'histograms'> & {
    histograms: Record<string, { counts: number[]; count: number; sumNs: number }>;
  };
  isBroken(runtime: number): boolean;
  setTypescriptInvoker(fn: (jobId: number, handler: string, payload: string) => void): void;
  completeTypescript(jobId: number, ok: boolean, value: string | ThrownDescription): BridgeResult | undefined;
  setEventListener(fn: (event: string, runtime: string, detail: string) => void): void;
  shutdown(): void;
  processInfo(): { signalChainInstalled: boolean; sigchldReinstalls: number; outstanding: number };
  asyncHandlers(runtime: number): string[];
  histogramUpperBoundsUs: number[];
  /** The addon's runtimes by index (native/common/job.h `RuntimeId`); the runtime table must agree. */
  runtimes: string[];
}

/** class, message, backtrace, permanent, kind: a thrown value as completeTypescript takes it. */
type ThrownDescription = [string, string, string[], boolean, string];

/** What completeTypescript answers: the outcome of an inline call, or undefined when its Promise gets it. */
type TypescriptOutcome = BridgeResult | Promise<BridgeResult> | undefined;

/** Each bridged runtime's index in the addon, from the runtime table (checked against the addon when it loads). */
const RUNTIME_INDEX = Object.fromEntries(RUNTIME_TABLE.flatMap((r) => (r.bridgeIndex === null ? [] : [[r.name, r.bridgeIndex]]))) as Record<
  BridgeRuntime,
  number
>;

/**
 * The runtime table and the addon must number the bridged runtimes alike, or a
 * Python step would run in Ruby: refuse an addon that disagrees (built from
 * other sources than this TypeScript).
 */
export function checkRuntimeIndices(native: Pick<NativeAddon, 'runtimes'>, path: string): void {
  const listed = Array.isArray(native.runtimes) ? native.runtimes : [];
  const wrong = BRIDGE_RUNTIMES.filter((rt) => listed[RUNTIME_INDEX[rt]] !== rt);
  if (wrong.length > 0 || listed.length !== BRIDGE_RUNTIMES.length) {
    const expected = BRIDGE_RUNTIMES.map((rt) => `${RUNTIME_INDEX[rt]}=${rt}`).join(', ');
    throw new BridgeLoadError(
      `the native bridge ${path} numbers its runtimes [${listed.join(', ')}], but the runtime table (src/shared/runtimes.ts) expects ${expected}. ` +
        'Rebuild the addon from these sources with `npm run build:native`, or make the table and native/common/job.h agree.',
    );
  }
}

export { packageRoot } from '../shared/paths.js';
export { addonPath } from './addon-files.js';

let addon: NativeAddon | undefined;

function loadAddon(): NativeAddon {
  if (addon) return addon;
  const path = addonPath();
  if (!existsSync(path)) {
    throw new BridgeLoadError(
      `the native bridge ${path} is missing: this platform (${process.platform}-${process.arch}) has no prebuilt addon and none was built. ` +
        'Build it from source: `npm rebuild @weft-engine/weft` (in a checkout: `npm run build:native`); it needs g++ and make.',
    );
  }
  let loaded: NativeAddon;
  try {
    loaded = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const fix = /already loaded by another Node environment/.test(msg)
      ? ''
      : ' Rebuild it from source with `npm rebuild @weft-engine/weft` (in a checkout: `npm run build:native`).';
    throw new BridgeLoadError(`cannot load the native bridge ${path}: ${msg}.${fix}`, { cause: err });
  }
  checkRuntimeIndices(loaded, path);
  return (addon = loaded);
}

/** What the SDK's load_handlers takes second: where the handlers' own packages are (workers/python/weft/_environment.py, workers/ruby/weft/environment.rb). */
function setupJson(runtime: 'python' | 'ruby', opts: LoadOptions): string {
  if (runtime === 'python') return JSON.stringify(opts.pythonVenv ? { venv: resolve(opts.pythonVenv) } : {});
  return JSON.stringify(opts.bundleGemfile ? { gemfile: resolve(opts.bundleGemfile) } : {});
}

/** findNonJson's answer for a container past MAX_JSON_DEPTH (the walk stops there). */
const TOO_DEEP = 'too deep';

/** The first value inside `v` that JSON cannot carry, as a readable type name, or TOO_DEEP. */
function findNonJson(v: unknown, depth = 0): string | null {
  if (v === null) return null;
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return null;
    case 'number':
      return Number.isFinite(v) ? null : `number ${v}`;
    case 'undefined':
      return 'undefined';
    case 'bigint':
      return 'bigint';
    case 'function':
      return 'function';
    case 'symbol':
      return 'symbol';
  }
  if (depth + 1 > MAX_JSON_DEPTH) return TOO_DEEP;
  if (Array.isArray(v)) {
    for (const x of v) {
      const bad = findNonJson(x, depth + 1);
      if (bad) return bad;
    }
    return null;
  }
  if (v instanceof Map) return 'Map';
  if (v instanceof Set) return 'Set';
  if (v instanceof Date) return null;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null && typeof (v as { toJSON?: unknown }).toJSON !== 'function') {
    return (v as object).constructor?.name ?? 'object';
  }
  for (const x of Object.values(v as object)) {
    const bad = findNonJson(x, depth + 1);
    if (bad) return bad;
  }
  return null;
}

function thrownOutcome(e: unknown): ThrownDescription {
  const t = describeThrown(e);
  return [t.class, t.message, t.backtrace, t.permanent, 'raised'];
}

/**
 * The native bridge backed by the addon. Create it with {@link openBridge};
 * there is one per process.
 */
export class AddonBridge implements NativeBridge {
  private readonly native: NativeAddon;
  private readonly tsHandlers = new Map<string, TypescriptStepHandler>();
  private tsLoaded: Promise<unknown> | undefined;
  private readonly brokenListeners: Array<(runtime: BridgeRuntime, reason: string) => void> = [];
  private readonly eventListeners: Array<(event: BridgeEvent, runtime: BridgeRuntime, detail: string) => void> = [];
  /** AbortControllers of typescript calls made with a key, until they settle. */
  private readonly tsAborts = new Map<number, AbortController>();
  /** The runtimes whose library is attached (python, ruby), with the home of their interpreter. */
  private readonly attached = new Set<'python' | 'ruby'>();
  private readonly homes = new Map<'python' | 'ruby', string>();

  constructor(native: NativeAddon) {
    this.native = native;
    native.setEventListener((event, runtime, detail) => {
      if (event === 'broken') {
        for (const l of this.brokenListeners) l(runtime as BridgeRuntime, detail);
      } else {
        for (const l of this.eventListeners) l(event as BridgeEvent, runtime as BridgeRuntime, detail);
      }
    });
    native.setTypescriptInvoker((id, handler, payload) => void this.runTypescript(id, handler, payload, false));
  }

  async load(runtime: 'python' | 'ruby', opts: LoadOptions): Promise<{ handlers: string[]; asyncHandlers: string[] }> {
    if (runtime !== 'python' && runtime !== 'ruby') throw new TypeError(`load() takes 'python' or 'ruby', got ${String(runtime)}`);
    const dirs = (Array.isArray(opts.handlersDir) ? opts.handlersDir : [opts.handlersDir]).map((d) => resolve(d));
    const sdkDir = resolve(opts.sdkDir ?? join(packageRoot(), 'workers', runtime));
    this.attach(runtime);
    try {
      const handlers = await this.native.load(RUNTIME_INDEX[runtime], dirs, sdkDir, setupJson(runtime, opts), this.homes.get(runtime));
      return { handlers, asyncHandlers: this.native.asyncHandlers(RUNTIME_INDEX[runtime]).sort() };
    } catch (err) {
      const e = err as Error & { errorClass?: string; backtrace?: string[] };
      throw new HandlerLoadError(e.message, runtime, e.errorClass ?? 'Error', e.backtrace ?? [], { cause: err });
    }
  }

  /**
   * Loads the runtime library of `runtime` (once): only a process that runs
   * Python maps libpython, only one that runs Ruby maps libruby.
   */
  private attach(runtime: 'python' | 'ruby'): void {
    if (this.attached.has(runtime)) return;
    const lib = runtimeLibrary(runtime);
    try {
      this.native.attach(RUNTIME_INDEX[runtime], lib.path, lib.preload);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new BridgeLoadError(
        `${msg}. If a shared library is missing, install that ${runtime}'s shared library (Debian: ` +
          `${runtime === 'python' ? 'apt-get install -y libpython3.X' : 'apt-get install -y libruby3.X'}) or point ${runtime === 'python' ? 'WEFT_PYTHON' : 'WEFT_RUBY'} at another ${runtime}.`,
        { cause: err },
      );
    }
    this.attached.add(runtime);
    if (lib.home) this.homes.set(runtime, lib.home);
  }

  async registerTypescriptHandlers(map: Record<string, TypescriptStepHandler>): Promise<{ handlers: string[] }> {
    for (const [key, fn] of Object.entries(map)) {
      if (typeof fn !== 'function') throw new TypeError(`typescript handler "${key}" is not a function`);
      this.tsHandlers.set(key, fn);
    }
    this.tsLoaded ??= this.native.load(RUNTIME_INDEX.typescript, [], '');
    await this.tsLoaded;
    return { handlers: [...this.tsHandlers.keys()].sort() };
  }

  dispatch(runtime: BridgeRuntime, call: BridgeCall): Promise<BridgeResult> {
    const idx = RUNTIME_INDEX[runtime];
    if (idx === undefined) throw new TypeError(`unknown runtime "${String(runtime)}"; expected python, ruby or typescript`);
    return this.native.dispatch(idx, call.handler, call.payload, call.timeoutMs, call.key);
  }

  call(runtime: BridgeRuntime, call: BridgeCall): BridgeResult | Promise<BridgeResult> {
    if (runtime === 'typescript') {
      const id = this.native.beginTypescript(call.handler, call.timeoutMs, call.key);
      if (typeof id !== 'number') return id; // rejected without running (breaker, broken, not loaded)
      if (call.key === undefined) return this.runTypescript(id, call.handler, call.payload, true)!;
      // A call that may be cancelled: its handler gets step.signal, aborted by cancel().
      const abort = new AbortController();
      this.tsAborts.set(call.key, abort);
      const forget = () => {
        if (this.tsAborts.get(call.key!) === abort) this.tsAborts.delete(call.key!);
      };
      const out = this.runTypescript(id, call.handler, call.payload, true, abort.signal)!;
      if (out instanceof Promise) return out.finally(forget);
      forget();
      return out;
    }
    const idx = RUNTIME_INDEX[runtime];
    if (idx === undefined) throw new TypeError(`unknown runtime "${String(runtime)}"; expected python, ruby or typescript`);
    return this.native.call(idx, call.handler, call.payload, call.timeoutMs, call.key);
  }

  cancel(runtime: BridgeRuntime, key: number): boolean {
    const idx = RUNTIME_INDEX[runtime];
    if (idx === undefined) throw new TypeError(`unknown runtime "${String(runtime)}"; expected python, ruby or typescript`);
    const found = this.native.cancel(idx, key);
    if (runtime === 'typescript') {
      const abort = this.tsAborts.get(key);
      this.tsAborts.delete(key);
      if (found) abort?.abort(Object.assign(new Error('the task was cancelled'), { name: 'Cancelled' }));
    }
    return found;
  }

  configure(runtime: BridgeRuntime, config: RuntimeConfig): void {
    if (runtime === 'python' || runtime === 'ruby') this.attach(runtime);
    this.native.configure(RUNTIME_INDEX[runtime], config);
  }

  /** Closes the breaker and forgets its counts (tests, operators). */
  resetBreaker(runtime: BridgeRuntime): void {
    this.native.resetBreaker(RUNTIME_INDEX[runtime]);
  }

  stats(): BridgeStats;
  stats(runtime: BridgeRuntime): RuntimeStats;
  stats(runtime?: BridgeRuntime): BridgeStats | RuntimeStats {
    const one = (rt: BridgeRuntime): RuntimeStats => {
      const s = this.native.stats(RUNTIME_INDEX[rt]);
      const bounds = this.native.histogramUpperBoundsUs;
      const h = (k: string): HistogramSnapshot => ({ counts: [], count: 0, sumNs: 0, upperBoundsUs: bounds, ...s.histograms[k] });
      return { ...s, histograms: { serialise: h('serialise'), queueWait: h('queueWait'), run: h('run'), return: h('return') } };
    };
    if (runtime) return one(runtime);
    return Object.fromEntries(BRIDGE_RUNTIMES.map((rt) => [rt, one(rt)])) as BridgeStats;
  }

  isBroken(runtime: BridgeRuntime): boolean {
    return this.native.isBroken(RUNTIME_INDEX[runtime]);
  }

  onBroken(listener: (runtime: BridgeRuntime, reason: string) => void): void {
    this.brokenListeners.push(listener);
  }

  onEvent(listener: (event: BridgeEvent, runtime: BridgeRuntime, detail: string) => void): void {
    this.eventListeners.push(listener);
  }

  /** Process-level facts for tests and diagnostics (signal chain state, outstanding calls). */
  processInfo(): { signalChainInstalled: boolean; sigchldReinstalls: number; outstanding: number } {
    return this.native.processInfo();
  }

  async shutdown(opts: { drainMs?: number } = {}): Promise<void> {
    this.native.shutdown();
    const until = Date.now() + (opts.drainMs ?? 5000);
    while (Date.now() < until && BRIDGE_RUNTIMES.some((rt) => this.native.stats(RUNTIME_INDEX[rt]).inFlight > 0)) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * Runs a typescript-target handler on the JS thread: handed back by the
   * bridge's thread (dispatch), or `inline` (call), where the outcome of a
   * handler that settles synchronously is answered at once.
   */
  private runTypescript(id: number, handler: string, payload: string, inline: boolean, signal?: AbortSignal): TypescriptOutcome {
    const fn = this.tsHandlers.get(handler);
    if (!fn) {
      const known = [...this.tsHandlers.keys()].sort().join(', ') || '(none)';
      return this.native.completeTypescript(id, false, [
        'HandlerNotFound',
        `no TypeScript handler is registered as "${handler}"; known handlers: ${known}`,
        [],
        true,
        'handler_not_found',
      ]);
    }
    let out: unknown;
    try {
      const step = JSON.parse(payload) as BridgeStep;
      if (signal) step.signal = signal;
      out = fn(step);
    } catch (e) {
      return this.native.completeTypescript(id, false, thrownOutcome(e));
    }
    if (out !== null && typeof out === 'object' && typeof (out as PromiseLike<unknown>).then === 'function') {
      const pending = inline ? this.native.deferTypescript(id) : undefined;
      (out as PromiseLike<unknown>).then(
        (v) => this.finishTypescript(id, handler, v),
        (e) => this.native.completeTypescript(id, false, thrownOutcome(e)),
      );
      return pending;
    }
    return this.finishTypescript(id, handler, out);
  }

  private finishTypescript(id: number, handler: string, value: unknown): TypescriptOutcome {
    const bad = findNonJson(value);
    const deep = bad === TOO_DEEP ? jsonDepthProblem(value) : undefined;
    if (deep) {
      return this.native.completeTypescript(id, false, [
        'InvalidReturn',
        `handler "${handler}" returned a result that nests deeper than ${deep.max} levels at ${deep.path}; flatten it (weft keeps every JSON value within ${deep.max} levels)`,
        [],
        true,
        'invalid_return',
      ]);
    }
    if (bad) {
      const article = /^[aeiou]/i.test(bad) ? 'an' : 'a';
      return this.native.completeTypescript(id, false, [
        'InvalidReturn',
        `handler "${handler}" returned ${article} ${bad}, which is not JSON; return objects, arrays, strings, numbers, booleans or null`,
        [],
        true,
        'invalid_return',
      ]);
    }
    return this.native.completeTypescript(id, true, JSON.stringify(value));
  }
}

let bridge: AddonBridge | undefined;

/**
 * Loads the addon (once per process, main thread only) and returns the bridge.
 *
 * @example
 * const bridge = openBridge();
 * await bridge.load('ruby', { handlersDir: 'handlers/ruby' });
 */
export function openBridge(): AddonBridge {
  bridge ??= new AddonBridge(loadAddon());
  return bridge;
}
