/**
 * A step's error record as weft stores it (issue 15): whatever a handler
 * raised, in any runtime, becomes a record PostgreSQL's jsonb can hold and a
 * reader can afford to load. jsonb refuses U+0000 and lone UTF-16 surrogates,
 * and an error record it refuses used to be retried forever, wedging the
 * worker that held it; an 8 MB message, kept for every attempt, made a task
 * view of tens of megabytes.
 *
 * So every string of the record (keys included) has NUL and lone surrogates
 * replaced by U+FFFD, and sizes are capped ({@link ERROR_RECORD_LIMITS},
 * stated in docs/operations.md). A cut string ends with a note saying how
 * long it was, and the record gets `truncated: true`.
 *
 * @example
 *   storableErrorRecord({ class: 'ValueError', message: 'bad byte -> \u0000 <-', backtrace: [] })
 *   // { class: 'ValueError', message: 'bad byte -> \uFFFD <-', backtrace: [] }
 */
import { LONE_SURROGATE } from './json-storable.js';

export const ERROR_RECORD_LIMITS = {
  /** Characters of the error's class name. */
  classChars: 256,
  /** UTF-8 bytes of the message. */
  messageBytes: 64 * 1024,
  /** Frames of the backtrace kept (the innermost ones: the list starts with the most recent call). */
  backtraceFrames: 200,
  /** UTF-8 bytes of one backtrace frame. */
  frameBytes: 2 * 1024,
  /** UTF-8 bytes of any other string field (language, kind, a runtime's extra facts). */
  fieldBytes: 2 * 1024,
  /** Nesting kept in extra fields (e.g. a breaker's `lastFailure` object). */
  extraDepth: 3,
  /** Entries kept of an extra array or object. */
  extraEntries: 50,
} as const;

/** The fields every runtime's error record has; extra fields are kept, made storable too. */
export interface ErrorRecordShape {
  class: string;
  message: string;
  backtrace: string[];
  [extra: string]: unknown;
}

const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');
const REPLACEMENT = '\uFFFD';

/** `s` with NUL and lone surrogates replaced by U+FFFD (no copy when there are none). */
export function storableText(s: string): string {
  let out = s.includes('\u0000') ? s.replaceAll('\u0000', REPLACEMENT) : s;
  if (LONE_SURROGATE.test(out)) out = out.replace(LONE_SURROGATES, REPLACEMENT);
  return out;
}

/**
 * `s` cut to at most `maxBytes` of UTF-8 (on a character boundary), ending
 * with a note of its full size when cut. `s` must be well-formed already.
 */
function capBytes(s: string, maxBytes: number): { text: string; cut: boolean } {
  // Every UTF-16 code unit is at most 3 bytes of UTF-8: most strings need no count at all.
  if (s.length * 3 <= maxBytes) return { text: s, cut: false };
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length <= maxBytes) return { text: s, cut: false };
  const note = ` … [cut by weft: ${bytes.length} bytes in all, ${maxBytes} kept]`;
  let end = Math.max(0, maxBytes - Buffer.byteLength(note));
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // not inside a character
  return { text: bytes.subarray(0, end).toString('utf8') + note, cut: true };
}

function capChars(s: string, maxChars: number): { text: string; cut: boolean } {
  if (s.length <= maxChars) return { text: s, cut: false };
  let end = maxChars - 1;
  if (/[\uD800-\uDBFF]/.test(s[end - 1] ?? '')) end--; // do not split a surrogate pair
  return { text: `${s.slice(0, end)}…`, cut: true };
}

function asText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined || v === null) return '';
  try {
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  } catch {
    return String(v);
  }
}

/**
 * The record made storable: class, message and backtrace (and any extra
 * fields) with NUL and lone surrogates replaced and sizes capped. Idempotent;
 * a record that needs nothing is returned with the same field values.
 */
export function storableErrorRecord<T extends ErrorRecordShape>(record: T): T {
  let cut = false;
  const text = (v: unknown, cap: (s: string) => { text: string; cut: boolean }) => {
    const r = cap(storableText(asText(v)));
    cut ||= r.cut;
    return r.text;
  };
  const field = (s: string) => capBytes(s, ERROR_RECORD_LIMITS.fieldBytes);
  const extra = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return text(v, field);
    if (v === null || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return v;
    if (typeof v !== 'object' || depth >= ERROR_RECORD_LIMITS.extraDepth) return text(v, field);
    const entries = Array.isArray(v) ? v : Object.entries(v as Record<string, unknown>);
    if (entries.length > ERROR_RECORD_LIMITS.extraEntries) cut = true;
    const kept = entries.slice(0, ERROR_RECORD_LIMITS.extraEntries);
    if (Array.isArray(v)) return kept.map((x) => extra(x, depth + 1));
    return Object.fromEntries((kept as Array<[string, unknown]>).map(([k, x]) => [text(k, field), extra(x, depth + 1)]));
  };

  const out: Record<string, unknown> = { class: '', message: '', backtrace: [] };
  for (const [k, v] of Object.entries(record)) {
    if (k === 'class') out.class = text(v, (s) => capChars(s, ERROR_RECORD_LIMITS.classChars)) || 'Error';
    else if (k === 'message') out.message = text(v, (s) => capBytes(s, ERROR_RECORD_LIMITS.messageBytes));
    else if (k === 'backtrace') {
      const frames = Array.isArray(v) ? v : [];
      if (frames.length > ERROR_RECORD_LIMITS.backtraceFrames) cut = true;
      out.backtrace = frames.slice(0, ERROR_RECORD_LIMITS.backtraceFrames).map((f) => text(f, (s) => capBytes(s, ERROR_RECORD_LIMITS.frameBytes)));
    } else out[text(k, field)] = extra(v, 0);
  }
  out.class ||= 'Error';
  if (cut) out.truncated = true;
  return out as T;
}

/** A failure weft itself found (not a handler's raise), in the shape every stored step error has. */
export interface WeftErrorRecord extends ErrorRecordShape {
  language: 'weft';
  /** True: do not retry (the same run would fail the same way). */
  permanent: boolean;
  /** What went wrong, for readers that branch on it: 'raised', 'invalid_outcome', 'invalid_return', ... */
  kind: string;
}

/**
 * The one constructor of the step errors weft records itself: a runner that
 * threw, a result that cannot be stored or interpreted, a template that could
 * not be read, a value the database refused. Made storable like a handler's.
 *
 * @example
 *   weftErrorRecord('InvalidReturn', 'handler "a" returned a result nested too deep', { permanent: true, kind: 'invalid_return' })
 *   // { language: 'weft', class: 'InvalidReturn', message: '…', backtrace: [], permanent: true, kind: 'invalid_return' }
 */
export function weftErrorRecord(cls: string, message: string, o: { permanent: boolean; kind: string }): WeftErrorRecord {
  return storableErrorRecord({ language: 'weft', class: cls, message, backtrace: [], permanent: o.permanent, kind: o.kind });
}
