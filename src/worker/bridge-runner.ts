import type { Logger } from '../shared/logger.js';
import { ConfigError } from '../shared/errors.js';
import type { StepRunner } from './runner.js';

/** Placeholder until the bridge lands: says clearly that this runtime needs the native addon. */
export async function createBridgeRunner(runtime: string, _handlersDir: string, _log: Logger): Promise<StepRunner> {
  throw new ConfigError(`runtime "${runtime}" needs the native bridge (npm run build:native), which is not wired in yet`);
}
