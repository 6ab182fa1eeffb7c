/**
 * Arbitrary JSON through the Python and Ruby echo handlers (fast-check):
 * strings with every escape, lone surrogates, NUL and astral characters,
 * doubles of every size, integers far past 2^53 written as plain digits,
 * nesting up to MAX_JSON_DEPTH. Every call must settle, either with an equal
 * value (big integers digit for digit) or with a clear, permanent
 * invalid_return (or, for a step Ruby's parser cannot read, a permanent
 * Weft::UnreadableStep); never a hang (each call has a timeout), a crash or a
 * retryable raise.
 */
import fc from 'fast-check';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { MAX_JSON_DEPTH } from '../../src/core/json-depth.js';
import { openBridge, type AddonBridge, type BridgeRuntime } from '../../src/bridge/index.js';
import { fixtures } from './helpers.js';

// WEFT_FUZZ_RUNS=5000 for a longer hunt; the default keeps the suite quick.
const RUNS = Number(process.env.WEFT_FUZZ_RUNS) || 200;
const CALL_TIMEOUT_MS = 5_000;

/** An integer literal JavaScript cannot hold exactly; written as its digits. */
class BigLiteral {
  constructor(readonly digits: string) {}
}

type Value = null | boolean | number | string | BigLiteral | Value[] | { [k: string]: Value };

const SPECIALS = [
  '\u0000',
  '\u0001',
  '\u001f',
  '\u007f',
  '"',
  '\\',
  '/',
  '\b\f\n\r\t',
  '\u2028\u2029',
  '\ud800',
  '\udfff',
  '\udc00\ud800',
  '😀',
  'é',
  'e\u0301',
  '\ufeff',
  '\uffff',
];
const text = fc
  .array(fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.constantFrom(...SPECIALS), fc.string({ maxLength: 8 })), { maxLength: 4 })
  .map((parts) => parts.join(''));
const leaf: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map((b) => new BigLiteral(b.toString())),
  text,
);
const { value } = fc.letrec<{ value: Value; array: Value[]; object: { [k: string]: Value } }>((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(text, tie('value'), { maxKeys: 4 }),
}));

function depthOf(v: Value): number {
  if (v === null || typeof v !== 'object' || v instanceof BigLiteral) return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + children.reduce<number>((d, c) => Math.max(d, depthOf(c)), 0);
}

/** The value, wrapped in up to `extra` more arrays/objects, never deeper than `max`. */
function deepen(v: Value, extra: number, max: number): Value {
  let out = v;
  const levels = Math.max(0, Math.min(extra, max - depthOf(v)));
  for (let i = 0; i < levels; i++) out = i % 2 ? [out] : { k: out };
  return out;
}

/** JSON text of a value; BigLiterals as their digits. */
function toText(v: Value, bigs: string[]): string {
  if (v instanceof BigLiteral) {
    bigs.push(v.digits);
    return v.digits;
  }
  if (Array.isArray(v)) return `[${v.map((x) => toText(x, bigs)).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${toText(x, bigs)}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

// The context is {"v": value}, so it is at most MAX_JSON_DEPTH deep (and never falsy: the SDKs read a falsy context as {}).
const contexts = fc.tuple(value, fc.nat({ max: MAX_JSON_DEPTH })).map(([v, extra]) => ({ v: deepen(v, extra, MAX_JSON_DEPTH - 1) }) as Value);

describe('bridge: arbitrary JSON round-trips through the echo handlers', () => {
  let bridge: AddonBridge;
  beforeAll(async () => {
    bridge = openBridge();
    for (const rt of ['python', 'ruby'] as const) await bridge.load(rt, { handlersDir: join(fixtures, 'handlers', rt) });
  });

  for (const runtime of ['python', 'ruby'] as BridgeRuntime[]) {
    it(`${runtime}: ${RUNS} values each settle: equal, or a clear permanent invalid_return`, async () => {
      const outcomes = { equal: 0, refused: 0 };
      await fc.assert(
        fc.asyncProperty(contexts, fc.boolean(), async (context, viaCall) => {
          const bigs: string[] = [];
          const contextText = toText(context, bigs);
          const payload = `{"task_id":"t","step_id":"s","step_name":"fuzz","attempt":1,"context":${contextText},"inputs":{},"dependency_results":{},"batch":null}`;
          const req = { handler: 'probe.echo', payload, timeoutMs: CALL_TIMEOUT_MS };
          const r = viaCall ? await bridge.call(runtime, req) : await bridge.dispatch(runtime, req);
          if (r.ok) {
            expect(JSON.parse(r.json)).toEqual(JSON.parse(contextText));
            for (const digits of bigs) expect(r.json).toContain(digits);
            outcomes.equal++;
          } else if (r.error.class === 'Weft::UnreadableStep') {
            // Ruby's parser misreads or refuses lone surrogates (values weft never stores): the SDK refuses the step for good, and says why.
            expect(runtime).toBe('ruby');
            expect(contextText).toMatch(/\\ud[89a-f]/);
            expect(r.error).toMatchObject({ kind: 'raised', permanent: true });
            expect(r.error.message).toMatch(/lone UTF-16 surrogate/);
            outcomes.refused++;
          } else {
            expect(r.error, JSON.stringify(r.error)).toMatchObject({ kind: 'invalid_return', permanent: true });
            expect(r.error.message).toMatch(/^handler "probe\.echo" returned .*(which is not JSON|nests deeper than)/);
            outcomes.refused++;
          }
        }),
        { numRuns: RUNS, interruptAfterTimeLimit: 50_000, markInterruptAsFailure: true },
      );
      expect(outcomes.equal + outcomes.refused).toBe(RUNS);
      // Most values are plain JSON every runtime carries; a refusal is the exception (Ruby and lone surrogates).
      expect(outcomes.equal).toBeGreaterThan(RUNS / 2);
      expect(bridge.isBroken(runtime)).toBe(false);
    }, 60_000);
  }
});
