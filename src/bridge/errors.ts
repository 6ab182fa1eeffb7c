import { WeftError } from '../shared/errors.js';
/** Errors the bridge's TypeScript side raises itself. */

/** The native addon could not be loaded or used; the message lists the fixes. */
export class BridgeLoadError extends WeftError {
  override name = 'BridgeLoadError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('bridge_unavailable', message, options);
  }
}

/** A runtime's interpreter or handlers failed to load; keeps the foreign identity. */
export class HandlerLoadError extends WeftError {
  override name = 'HandlerLoadError';
  readonly language: string;
  readonly errorClass: string;
  readonly backtrace: string[];
  constructor(message: string, language: string, errorClass: string, backtrace: string[], options?: { cause?: unknown }) {
    super('handler_load_failed', message, options);
    this.language = language;
    this.errorClass = errorClass;
    this.backtrace = backtrace;
  }
}
