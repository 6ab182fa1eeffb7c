import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, jsonDepthProblem, jsonTextDepth } from '../../src/core/json-depth.js';

/** An array nested `n` levels deep around the number 1. */
function nest(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = [v];
  return v;
}

describe('json depth', () => {
  it('accepts scalars and values up to the limit', () => {
    expect(jsonDepthProblem(1)).toBeUndefined();
    expect(jsonDepthProblem('x')).toBeUndefined();
    expect(jsonDepthProblem({ a: [1] })).toBeUndefined();
    expect(jsonDepthProblem(nest(MAX_JSON_DEPTH))).toBeUndefined();
  });

  it('names the path of the first container past the limit', () => {
    const problem = jsonDepthProblem({ ok: 1, 'odd key': nest(MAX_JSON_DEPTH) });
    expect(problem).toEqual({ path: `$["odd key"]${'[0]'.repeat(MAX_JSON_DEPTH - 1)}`, max: MAX_JSON_DEPTH });
  });

  it('does not overflow the stack on very deep values', () => {
    expect(jsonDepthProblem(nest(200_000))?.max).toBe(MAX_JSON_DEPTH);
  });

  it('measures a text without parsing it and ignores brackets in strings', () => {
    const deep = JSON.stringify(nest(MAX_JSON_DEPTH + 1));
    expect(jsonTextDepth(deep)).toBe(MAX_JSON_DEPTH + 1);
    expect(jsonTextDepth(JSON.stringify({ s: '['.repeat(500), t: '\\"[' }))).toBe(1);
    expect(jsonTextDepth('[1]')).toBe(0); // too short to be too deep: not scanned
  });
});
