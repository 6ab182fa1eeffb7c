/**
 * The native bridge: Python, Ruby and TypeScript-through-the-bridge step
 * handlers behind one call path. The worker host depends on the
 * {@link NativeBridge} interface; {@link openBridge} returns the real one.
 */
export * from './types.js';
export { BridgeLoadError, HandlerLoadError } from './errors.js';
export { AddonBridge, addonPath, openBridge, packageRoot } from './native-bridge.js';
export { histogramPercentileUs } from './histogram.js';
