/**
 * The deepest nesting weft accepts in a JSON value it stores or hands to a
 * handler: a task's context, an idempotency key, a handler's result.
 *
 * One number for every runtime, chosen below the smallest parser limit among
 * them (Ruby's `JSON.parse` stops at 100 levels by default, Python's near
 * 1,000, V8 and PostgreSQL in the thousands), so a value the API accepts can
 * be read by every handler. Documented in docs/api.md and docs/operations.md.
 *
 * Depth counts containers: `1` and `"x"` have depth 0, `[]` and `{}` depth 1,
 * `{"a":[1]}` depth 2.
 */
export const MAX_JSON_DEPTH = 64;

/** Where a value first goes deeper than the limit, or undefined when it does not. */
export interface DepthProblem {
  /** JSONPath of the first container past the limit, e.g. `$.a[0].b`. */
  path: string;
  /** The limit it broke. */
  max: number;
}

/**
 * Check a parsed value's nesting without recursion (so a hostile value
 * thousands of levels deep cannot overflow the stack).
 *
 * @example
 *   jsonDepthProblem({ a: [1] })        // undefined
 *   jsonDepthProblem(nest(65))          // { path: '$[0][0]…', max: 64 }
 */
export function jsonDepthProblem(root: unknown, max = MAX_JSON_DEPTH): DepthProblem | undefined {
  const stack: Array<[unknown, string, number]> = [[root, '$', 0]];
  while (stack.length > 0) {
    const [v, path, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > max) return { path, max };
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`, depth + 1]);
    } else {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, child] = entries[i]!;
        stack.push([child, /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`, depth + 1]);
      }
    }
  }
  return undefined;
}

/**
 * The nesting depth of a JSON text, read without parsing it: brackets inside
 * strings are skipped. Cheap enough for every handler result; a text shorter
 * than twice the limit cannot be too deep and is not scanned at all.
 */
export function jsonTextDepth(text: string, max = MAX_JSON_DEPTH): number {
  if (text.length < 2 * (max + 1)) return 0;
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > deepest) deepest = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}
