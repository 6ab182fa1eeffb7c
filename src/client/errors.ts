/**
 * What a WeftClient call throws when the API answers with an error: one class
 * per kind of answer a caller handles differently, each carrying the server's
 * `code` (e.g. `token_invalid`), the HTTP status and the whole error body.
 * A server that cannot be reached, or does not answer in time, is an
 * {@link HttpUnreachableError} instead: nothing came back to classify.
 */
import { WeftError } from '../shared/errors.js';

export { HttpUnreachableError } from '../shared/http-json.js';

/** The `error` object of every API error answer (docs/api.md, "Errors"). */
export interface ApiErrorBody {
  code: string;
  message: string;
  /** The field at fault, e.g. `context.even_number` (400). */
  path?: string;
  /** Every input_schema problem (400). */
  details?: unknown[];
  /** Every template problem (400 template_invalid). */
  problems?: unknown[];
  /** The task an idempotency key already names (409). */
  task_id?: string;
  /** The fields that differ from that task's request (409). */
  differs?: string[];
  /** How long to wait before retrying (429, 503). */
  retry_after_s?: number;
  [more: string]: unknown;
}

/**
 * Any error answer of the API. Catch a subclass to handle one kind; `code`
 * tells finer cases apart (`token_required` from `token_invalid`).
 *
 * @example
 *   try { await client.getTask(id) } catch (err) {
 *     if (err instanceof ApiNotFoundError) return undefined;
 *     throw err;
 *   }
 */
export class WeftApiError extends WeftError {
  override name = 'WeftApiError';
  /** The HTTP status the server answered. */
  readonly status: number;
  /** The server's error object (code, message and whatever else it said). */
  readonly body: ApiErrorBody;
  /** The request that failed, e.g. `GET /v1/tasks/…`. */
  readonly request: string;
  constructor(status: number, body: ApiErrorBody, request: string) {
    super(body.code, body.message);
    this.status = status;
    this.body = body;
    this.request = request;
  }
  /** The field at fault, when the server named one. */
  get path(): string | undefined {
    return this.body.path;
  }
}

/** 400 (or 422): the request is wrong; `path` names the field, `details` lists every problem. */
export class ApiInvalidInputError extends WeftApiError {
  override name = 'ApiInvalidInputError';
}

/** 401: no token where one is needed (`token_required`), or an unknown or revoked one (`token_invalid`). */
export class ApiUnauthorizedError extends WeftApiError {
  override name = 'ApiUnauthorizedError';
}

/** 403: the token lacks the route's scope (`forbidden`), or the API refuses this caller (`host_not_allowed`, `cross_origin`). */
export class ApiForbiddenError extends WeftApiError {
  override name = 'ApiForbiddenError';
}

/** 404: no such task, step, template, idempotency key or route. */
export class ApiNotFoundError extends WeftApiError {
  override name = 'ApiNotFoundError';
}

/**
 * 409: an idempotency key reused with a different request (`taskId` names the
 * task it made, `differs` the fields), a template changed under the same
 * version, or an operation the task's state does not allow.
 */
export class ApiConflictError extends WeftApiError {
  override name = 'ApiConflictError';
  get taskId(): string | undefined {
    return this.body.task_id;
  }
  get differs(): string[] | undefined {
    return this.body.differs;
  }
}

/** 429: too many tasks, retries or templates this minute, or too many bad tokens; wait `retryAfterS`. */
export class ApiRateLimitedError extends WeftApiError {
  override name = 'ApiRateLimitedError';
  readonly retryAfterS: number | undefined;
  constructor(status: number, body: ApiErrorBody, request: string, retryAfterS: number | undefined) {
    super(status, body, request);
    this.retryAfterS = retryAfterS;
  }
}

/** 503: the orchestrator is starting, stopping, busy or without PostgreSQL; repeat after `retryAfterS`. */
export class ApiUnavailableError extends WeftApiError {
  override name = 'ApiUnavailableError';
  readonly retryAfterS: number | undefined;
  constructor(status: number, body: ApiErrorBody, request: string, retryAfterS: number | undefined) {
    super(status, body, request);
    this.retryAfterS = retryAfterS;
  }
}

/**
 * The error for an answer with `status` >= 400. A body that is not weft's
 * error shape (a proxy's HTML page) becomes `{ code: 'http_<status>' }` with
 * the start of its text as the message.
 */
export function apiError(status: number, rawBody: unknown, request: string, retryAfter: string | null): WeftApiError {
  const body = errorBodyOf(status, rawBody);
  const retryAfterS = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : body.retry_after_s;
  if (status === 400 || status === 422) return new ApiInvalidInputError(status, body, request);
  if (status === 401) return new ApiUnauthorizedError(status, body, request);
  if (status === 403) return new ApiForbiddenError(status, body, request);
  if (status === 404) return new ApiNotFoundError(status, body, request);
  if (status === 409) return new ApiConflictError(status, body, request);
  if (status === 429) return new ApiRateLimitedError(status, body, request, retryAfterS);
  if (status === 503) return new ApiUnavailableError(status, body, request, retryAfterS);
  return new WeftApiError(status, body, request);
}

function errorBodyOf(status: number, raw: unknown): ApiErrorBody {
  const e = (raw as { error?: unknown } | undefined)?.error as Partial<ApiErrorBody> | undefined;
  if (e && typeof e.code === 'string' && typeof e.message === 'string') return e as ApiErrorBody;
  const text = typeof raw === 'string' ? raw : JSON.stringify(raw ?? '');
  return { code: `http_${status}`, message: `HTTP ${status} without a weft error body: ${text.slice(0, 200)}` };
}
