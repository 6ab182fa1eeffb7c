import type { BridgeSettings, HandlerDependencies } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { ConfigError } from '../shared/errors.js';
import { loadHandlerDir } from './handler-registry.js';
import { NativeRunner } from './native-runner.js';
import type { StepRunner } from './runner.js';

/**
 * The runner for a runtime: native TypeScript handlers directly, the others
 * through the bridge, configured with `bridge` (`loadConfig().bridge`) and
 * sized for the worker's `concurrency` (default 32); Python and Ruby handlers
 * import their own packages from `dependencies` (`loadConfig().dependencies`).
 */
export async function createRunner(
  runtime: string,
  handlersDir: string,
  log: Logger,
  bridge: BridgeSettings = {},
  concurrency?: number,
  dependencies?: HandlerDependencies,
): Promise<StepRunner> {
  if (runtime === 'native') return new NativeRunner(await loadHandlerDir(handlersDir));
  if (runtime === 'python' || runtime === 'ruby' || runtime === 'typescript') {
    const { createBridgeRunner } = await import('./bridge-runner.js');
    return createBridgeRunner(runtime, handlersDir, log, undefined, bridge, concurrency, dependencies);
  }
  throw new ConfigError(`unknown runtime "${runtime}"; use native, typescript, python or ruby`);
}
