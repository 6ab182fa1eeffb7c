/**
 * Error classes a person will read. Each says what was found, what was
 * expected and how to fix it; `name` is set so logs and the API show it.
 */

export class WeftError extends Error {
  override name = 'WeftError';
  /** A stable machine-readable code, e.g. `template_invalid`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A setting (environment variable or flag) has a value weft cannot use. */
export class ConfigError extends WeftError {
  override name = 'ConfigError';
  constructor(message: string) {
    super('config_invalid', message);
  }
}

/** A database could not be reached or set up. */
export class DatabaseError extends WeftError {
  override name = 'DatabaseError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('database_unavailable', message, options);
  }
}

/** Something the caller asked for does not exist (HTTP 404). */
export class NotFoundError extends WeftError {
  override name = 'NotFoundError';
  constructor(message: string) {
    super('not_found', message);
  }
}

/** The request conflicts with what is stored (HTTP 409). */
export class ConflictError extends WeftError {
  override name = 'ConflictError';
  /** What the conflict is with, for the API's answer (e.g. the existing task's id). */
  readonly details: Record<string, unknown> | undefined;
  constructor(message: string, details?: Record<string, unknown>) {
    super('conflict', message);
    this.details = details;
  }
}

/** Input failed validation (HTTP 400). `path` names the offending field. */
export class ValidationError extends WeftError {
  override name = 'ValidationError';
  constructor(
    message: string,
    readonly path: string = '',
    readonly details: unknown[] = [],
  ) {
    super('invalid_input', message);
  }
}

/** Plain description of any thrown value, for logs and stored step errors. */
export function describeError(err: unknown): { class: string; message: string; stack?: string } {
  if (err instanceof Error) return { class: err.name || err.constructor.name, message: err.message, stack: err.stack };
  return { class: typeof err, message: String(err) };
}
