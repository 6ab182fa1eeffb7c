import { describe, expect, it } from 'vitest';
import { toJsonResult } from '../../src/worker/native-runner.js';

describe('a native handler result as JSON (toJsonResult)', () => {
  it('keeps JSON values exactly and writes bigints as decimal strings', () => {
    expect(toJsonResult('k', { a: [1, 'x', null, true], n: 2n ** 70n })).toEqual({
      ok: true,
      result: undefined,
      json: '{"a":[1,"x",null,true],"n":"1180591620717411303424"}',
    });
    expect(toJsonResult('k', undefined)).toMatchObject({ ok: true, json: 'null' });
  });

  it.each([
    [{ total: NaN }, 'the number NaN at $.total'],
    [{ rows: [1, { ratio: Infinity }] }, 'the number Infinity at $.rows[1].ratio'],
    [[-Infinity], 'the number -Infinity at $[0]'],
    [{ 'odd key': new Map() }, 'a Map at $["odd key"]'],
    [{ f: () => 1 }, 'a function at $.f'],
  ])('refuses %j for good, naming what and where', (value, message) => {
    const r = toJsonResult('stats.mean', value);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toMatchObject({ class: 'InvalidReturn', permanent: true, kind: 'invalid_return' });
    expect(r.error.message).toContain(`handler "stats.mean" returned a value that is not JSON (${message})`);
  });
});
