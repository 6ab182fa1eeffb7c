import { NotFoundError, ValidationError } from '../shared/errors.js';
import { isUuid } from '../shared/ids.js';

/** The `:id` route parameter, checked to be a UUID (400 naming `id` otherwise; 404 when empty, as in `/v1/tasks/`). */
export function taskId(params: unknown): string {
  const id = (params as { id: string }).id;
  if (id === '') throw new NotFoundError('the path names no task: GET /v1/tasks lists tasks, GET /v1/tasks/<id> reads one');
  if (!isUuid(id)) throw new ValidationError(`task id ${JSON.stringify(id)} is not a UUID`, 'id');
  return id;
}

/** `/context/amount` + {missingProperty: 'x'} → `context.amount.x` */
export function fieldPath(instancePath: string, params: Record<string, unknown>): string {
  const parts = instancePath.split('/').filter(Boolean);
  if (typeof params.missingProperty === 'string') parts.push(params.missingProperty);
  if (typeof params.additionalProperty === 'string') parts.push(params.additionalProperty);
  return parts.join('.');
}

/** An optional integer query parameter within [min, max]; the error names the parameter and the range. */
export function intParam(raw: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ValidationError(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`, name);
  }
  return n;
}

/** An optional ISO 8601 instant query parameter. */
export function dateParam(raw: string | undefined, name: string): Date | undefined {
  if (raw === undefined || raw === '') return undefined;
  const d = new Date(raw);
  if (Number.isNaN(d.getTime()))
    throw new ValidationError(`${name} must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z, got ${JSON.stringify(raw)}`, name);
  return d;
}
