import { createHash } from 'node:crypto';

/**
 * Deterministic trace and span ids (issue 10).
 *
 * A task's steps are enqueued by whichever process happens to finish their
 * last parent, inside one SQL statement (weft.finish_steps): no message, and
 * so no trace context, travels with most of them. Instead every process
 * derives the same ids from what it reads in the row:
 *
 *   trace id      = the task's UUID, hex without dashes (128 bits, as a trace id is)
 *   root span id  = 8 bytes of sha256("weft.task:" + task id)
 *
 * So a worker that claims a step from the PostgreSQL queue (no message at
 * all) still parents its spans on the task's root span, and a trace needs no
 * column, no payload and no coordination. Pure functions, no I/O.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The trace id of a task: its UUID as 32 lowercase hex digits. */
export function taskTraceId(taskId: string): string {
  if (!UUID.test(taskId)) throw new TypeError(`task id ${JSON.stringify(taskId)} is not a UUID; a trace id is derived from the task's UUID`);
  return taskId.replace(/-/g, '').toLowerCase();
}

/** The span id of a task's root span (`weft.task`), the parent of every step span. */
export function taskRootSpanId(taskId: string): string {
  return createHash('sha256').update(`weft.task:${taskId.toLowerCase()}`).digest('hex').slice(0, 16);
}

/** W3C `traceparent` for a span: `00-<trace id>-<span id>-<flags>`. */
export function formatTraceparent(traceId: string, spanId: string, sampled = true): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

export interface ParsedTraceparent {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

/** Read a W3C `traceparent` (version 00); undefined for anything else, all-zero ids included. */
export function parseTraceparent(value: unknown): ParsedTraceparent | undefined {
  const text = Buffer.isBuffer(value) ? value.toString('latin1') : value;
  if (typeof text !== 'string') return undefined;
  const m = TRACEPARENT.exec(text.trim().toLowerCase());
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, spanId: m[2]!, sampled: (parseInt(m[3]!, 16) & 1) === 1 };
}

/** The `traceparent` of a task's root span: what the API hands back and what a step without a message context hangs under. */
export function taskTraceparent(taskId: string): string {
  return formatTraceparent(taskTraceId(taskId), taskRootSpanId(taskId));
}
