import type { Logger } from '../shared/logger.js';
import type { ClaimedStep } from '../store/events.js';
import type { BridgeRuntime, NativeBridge } from '../bridge/types.js';
import { loadHandlerDir } from './handler-registry.js';
import { handlerStepJson, type RunOutcome, type StepRunner } from './runner.js';

let openRunners = 0;

/**
 * Python, Ruby, or TypeScript through the native bridge: the step is
 * serialised once, crosses the addon's dispatch path (breaker check, queue,
 * interpreter thread) and comes back as JSON text that is stored as is.
 */
export async function createBridgeRunner(runtime: BridgeRuntime, handlersDir: string, log: Logger, bridge?: NativeBridge): Promise<StepRunner> {
  const b = bridge ?? (await import('../bridge/index.js')).openBridge();
  let keys: string[];
  if (runtime === 'typescript') {
    const registry = await loadHandlerDir(handlersDir);
    keys = (await b.registerTypescriptHandlers(Object.fromEntries(registry.keys().map((k) => [k, registry.get(k)!])) as never)).handlers;
  } else {
    keys = (await b.load(runtime, { handlersDir })).handlers;
  }
  log.info({ runtime, handlers: keys.length }, 'bridge runtime loaded');
  openRunners++;
  return new BridgeRunner(b, runtime, keys);
}

export class BridgeRunner implements StepRunner {
  private closed = false;

  /** Python and Ruby each run on one interpreter thread: one handler at a time. */
  readonly capacity: number | undefined;

  constructor(
    private readonly bridge: NativeBridge,
    readonly runtime: BridgeRuntime,
    private readonly keys: string[],
  ) {
    this.capacity = runtime === 'typescript' ? undefined : 1;
  }

  handlerKeys(): string[] {
    return this.keys;
  }

  async run(step: ClaimedStep): Promise<RunOutcome> {
    const r = await this.bridge.dispatch(this.runtime, {
      handler: step.handler,
      payload: handlerStepJson(step),
      timeoutMs: step.timeout_ms,
    });
    if (r.ok) return { ok: true, result: undefined, json: r.json };
    return { ok: false, error: { ...r.error } };
  }

  isBroken(): boolean {
    return this.bridge.isBroken(this.runtime);
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
