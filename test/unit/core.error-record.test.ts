import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERROR_RECORD_LIMITS, storableErrorRecord, storableText, type ErrorRecordShape } from '../../src/core/error-record.js';
import { unstorableValue } from '../../src/core/json-storable.js';

const record = (over: Record<string, unknown> = {}): ErrorRecordShape => ({ class: 'ValueError', message: 'boom', backtrace: ['a.py:1:in f'], ...over });
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('storableErrorRecord', () => {
  it('replaces NUL and lone surrogates in class, message, backtrace, extra fields and keys, and keeps surrogate pairs', () => {
    const out = storableErrorRecord(
      record({
        class: 'Bad\u0000Class',
        message: 'bad byte -> \u0000 <- half \ud800 pair \ud83d\ude00',
        backtrace: ['f\udc00.py:1'],
        lastFailure: { class: 'X\u0000', message: 'm' },
        ['k\u0000']: 'v\ud800',
      }),
    );
    expect(out).toEqual({
      class: 'Bad\uFFFDClass',
      message: 'bad byte -> \uFFFD <- half \uFFFD pair \ud83d\ude00',
      backtrace: ['f\uFFFD.py:1'],
      lastFailure: { class: 'X\uFFFD', message: 'm' },
      ['k\uFFFD']: 'v\uFFFD',
    });
  });

  it('leaves a clean record as it is', () => {
    const r = record({ language: 'python', permanent: false, kind: 'raised' });
    expect(storableErrorRecord(r)).toEqual(r);
  });

  it('caps the message at 64 KiB of UTF-8 on a character boundary, saying how long it was', () => {
    const message = '€'.repeat(100_000); // 3 bytes each
    const out = storableErrorRecord(record({ message }));
    expect(out.truncated).toBe(true);
    expect(bytes(out.message)).toBeLessThanOrEqual(ERROR_RECORD_LIMITS.messageBytes);
    expect(out.message).toMatch(/^€+ … \[cut by weft: 300000 bytes in all, 65536 kept\]$/);
  });

  it('caps the class at 256 characters, the backtrace at 200 frames of 2 KiB, other strings at 2 KiB', () => {
    const out = storableErrorRecord(
      record({ class: 'C'.repeat(1_000), backtrace: Array.from({ length: 300 }, (_, i) => `${i}:${'f'.repeat(5_000)}`), kind: 'k'.repeat(10_000) }),
    );
    expect(out.class).toHaveLength(256);
    expect(out.backtrace).toHaveLength(200);
    expect(out.backtrace[0]!.startsWith('0:fff')).toBe(true);
    for (const f of out.backtrace) expect(bytes(f)).toBeLessThanOrEqual(2_048);
    expect(bytes(out.kind as string)).toBeLessThanOrEqual(2_048);
    expect(out.truncated).toBe(true);
  });

  it('makes a record of anything a runtime might send (missing fields, non-strings) without throwing', () => {
    const out = storableErrorRecord({
      class: undefined,
      message: 42,
      backtrace: 'not a list',
      nested: { a: { b: { c: { d: 1 } } } },
    } as unknown as ErrorRecordShape);
    expect(out).toMatchObject({ class: 'Error', message: '42', backtrace: [] });
    expect(typeof (out.nested as { a: { b: { c: unknown } } }).a.b.c).toBe('string');
  });

  it('any record comes out storable, within the caps, and the same when made storable again', () => {
    const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 40 }));
    fc.assert(
      fc.property(
        fc.record({
          class: text,
          message: fc.oneof(
            text,
            text.map((t) => t.repeat(3_000)),
          ),
          backtrace: fc.array(text, { maxLength: 250 }),
          extra: fc.anything(),
        }),
        (r) => {
          const out = storableErrorRecord(r);
          expect(unstorableValue(JSON.parse(JSON.stringify(out)))).toBeUndefined();
          expect(out.class.length).toBeLessThanOrEqual(ERROR_RECORD_LIMITS.classChars);
          expect(bytes(out.message)).toBeLessThanOrEqual(ERROR_RECORD_LIMITS.messageBytes);
          expect(out.backtrace.length).toBeLessThanOrEqual(ERROR_RECORD_LIMITS.backtraceFrames);
          expect(storableErrorRecord(out)).toEqual(out);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('storableText', () => {
  it('returns the same string when there is nothing to replace', () => {
    const s = 'plain ✓ text';
    expect(storableText(s)).toBe(s);
  });
});
