/**
 * weft's convention for integers in JSON: a number while it is exact
 * (|n| ≤ 2^53 − 1), a decimal string beyond. Handlers in every language
 * follow it, so 6^64 survives every hop exactly.
 */
export function toBig(value: unknown, what: string): bigint {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  throw new TypeError(`${what} should be an integer (a number or a decimal string), got ${JSON.stringify(value)}`);
}

export function fromBig(n: bigint): number | string {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) && n >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(n) : n.toString();
}

/** The value of the step's only parent. */
export function onlyParent(deps: Record<string, unknown>, step: string): bigint {
  const names = Object.keys(deps);
  if (names.length !== 1) throw new TypeError(`step ${step} expects exactly one parent, has ${names.length}: ${names.join(', ')}`);
  return toBig(deps[names[0]!], `result of ${names[0]}`);
}

/** The product of every parent's value. */
export function productOfParents(deps: Record<string, unknown>, step: string): bigint {
  const names = Object.keys(deps).sort();
  if (names.length === 0) throw new TypeError(`step ${step} expects parents, has none`);
  return names.reduce((acc, n) => acc * toBig(deps[n], `result of ${n}`), 1n);
}
