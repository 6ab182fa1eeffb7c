import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { yamlTextDepth } from '../../src/api/yaml-depth.js';
import { jsonDepthProblem } from '../../src/core/json-depth.js';

const root = join(import.meta.dirname, '..', '..', 'templates');
const yamlFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : [],
  );

/** The real depth of a parsed YAML text (containers counted as JSON depth counts them). */
function depthOf(text: string): number {
  const value = parse(text) as unknown;
  for (let max = 0; ; max++) if (!jsonDepthProblem(value, max)) return max;
}

describe('yamlTextDepth', () => {
  it.each([
    ['block mappings', 'a:\n  b:\n    c: 1\n'],
    ['a sequence of mappings', 'steps:\n  - name: a\n    retry:\n      max: 3\n  - name: b\n'],
    ['flow collections', 'a: {b: [1, [2, {c: 3}]]}\n'],
    ['compact sequences', '- - - x\n'],
    ['quoted brackets and comments', 'a: "[[[[" # [[[[\nb: \'{{\'\n'],
    ['a block scalar holding brackets', 'a:\n  b: |\n    [[[[[[ {{{{\n    ]]\n  c: 1\n'],
  ])('estimates %s within one level of the parsed depth', (_what, text) => {
    const { depth } = yamlTextDepth(text);
    expect(Math.abs(depth - depthOf(text))).toBeLessThanOrEqual(1);
  });

  it('is within one level for every shipped template', () => {
    for (const file of yamlFiles(root)) {
      const text = readFileSync(file, 'utf8');
      expect({ file, off: Math.abs(yamlTextDepth(text).depth - depthOf(text)) <= 1 }).toEqual({ file, off: true });
    }
  });

  it('sees nesting written on one line, and stops counting past the limit', () => {
    expect(yamlTextDepth(`a: ${'['.repeat(200_000)}`, 80)).toEqual({ depth: 81, line: 1 });
    expect(yamlTextDepth(`${'- '.repeat(200_000)}x`, 80).depth).toBe(81);
    expect(yamlTextDepth(`a: &x ${'{b: '.repeat(100)}`, 80).depth).toBe(81);
  });
});
