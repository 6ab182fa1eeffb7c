import { InvalidArgumentError } from 'commander';

/**
 * Parsers for numeric command-line options. commander hands option values
 * over as strings; `Number("abc")` would quietly become NaN, so these refuse
 * anything that is not a whole number in range, and commander prints the
 * option, the value and the reason.
 *
 * @example
 *   .option('--port <port>', 'HTTP port', port, 8080)
 *   .option('--runs <n>', 'runs', integer(1))
 */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `a whole number ≥ ${min}` : `a whole number from ${min} to ${max}`;
      throw new InvalidArgumentError(`expected ${range}.`);
    }
    return n;
  };
}

/**
 * A comma-separated list of whole numbers in range, e.g. `8,16`.
 *
 * @example
 *   .option('--io-tasks <list>', 'task counts', integerList(1, 256))
 */
export function integerList(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number[] {
  const one = integer(min, max);
  return (value) => {
    const parts = value.split(',').map((p) => p.trim());
    if (parts.some((p) => p === '')) throw new InvalidArgumentError('expected a comma-separated list of whole numbers, e.g. 32,256.');
    return parts.map(one);
  };
}

/** A TCP port (0 = any free port). */
export const port = integer(0, 65_535);
