import { describe, expect, it } from 'vitest';
import {
  compileInputSchema,
  compileSchemaPattern,
  MAX_PATTERN_INPUT,
  pointerToSegments,
  SchemaPatternError,
  schemaPatternProblems,
} from '../../src/core/template/input-schema.js';

const linearSchema = {
  type: 'object',
  required: ['even_number'],
  properties: { even_number: { type: 'integer', minimum: 2, maximum: 100, multipleOf: 2 } },
};

describe('compileInputSchema', () => {
  it('accepts anything when the template has no input_schema', () => {
    const check = compileInputSchema({});
    expect(check(undefined)).toEqual({ ok: true });
    expect(check({ any: 1 })).toEqual({ ok: true });
  });

  it('accepts a context that satisfies the schema', () => {
    expect(compileInputSchema({ input_schema: linearSchema })({ even_number: 6 })).toEqual({ ok: true });
  });

  it('names the missing field', () => {
    const r = compileInputSchema({ input_schema: linearSchema })({});
    expect(r).toEqual({ ok: false, problems: [{ path: 'context.even_number', message: 'context.even_number is required but missing' }] });
  });

  it('names a field with a bad value and what was found', () => {
    const check = compileInputSchema({ input_schema: linearSchema });
    expect(check({ even_number: 3 })).toEqual({
      ok: false,
      problems: [{ path: 'context.even_number', message: 'context.even_number must be multiple of 2 (found 3)' }],
    });
    const r = check({ even_number: 'two' });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems).toEqual([{ path: 'context.even_number', message: 'context.even_number must be integer (found "two")' }]);
  });

  it('reports every problem, with paths into nested objects and arrays', () => {
    const check = compileInputSchema({
      input_schema: {
        type: 'object',
        additionalProperties: false,
        properties: {
          items: { type: 'array', items: { type: 'object', required: ['sku'], properties: { sku: { type: 'string', format: 'uuid' } } } },
          'odd key': { type: 'string' },
        },
      },
    });
    const r = check({ items: [{ sku: 'x' }, {}], 'odd key': 1, extra: true });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems.map((p) => p.path).sort()).toEqual(['context.extra', 'context.items[0].sku', 'context.items[1].sku', 'context["odd key"]']);
    expect(!r.ok && r.problems.find((p) => p.path === 'context.extra')?.message).toBe("context.extra is not allowed by the template's input_schema");
    expect(!r.ok && r.problems.find((p) => p.path === 'context.items[0].sku')?.message).toBe('context.items[0].sku must match format "uuid" (found "x")');
  });

  it('names the context itself when it has the wrong type', () => {
    const r = compileInputSchema({ input_schema: linearSchema })([1]);
    expect(r).toEqual({ ok: false, problems: [{ path: 'context', message: 'context must be object (found [1])' }] });
  });

  it('compiles two templates whose schemas share an $id', () => {
    const a = compileInputSchema({ input_schema: { $id: 'weft-test-shared-id', type: 'object', required: ['a'] } });
    const b = compileInputSchema({ input_schema: { $id: 'weft-test-shared-id', type: 'object', required: ['b'] } });
    const again = compileInputSchema({ input_schema: { $id: 'weft-test-shared-id', type: 'object', required: ['a'] } });
    expect(a({ a: 1 })).toEqual({ ok: true });
    expect(b({ a: 1 })).toEqual({ ok: false, problems: [{ path: 'context.b', message: 'context.b is required but missing' }] });
    expect(again({})).toEqual({ ok: false, problems: [{ path: 'context.a', message: 'context.a is required but missing' }] });
  });

  it('decodes JSON pointers', () => {
    expect(pointerToSegments('')).toEqual([]);
    expect(pointerToSegments('/a~1b/0/c~0d/01')).toEqual(['a/b', 0, 'c~d', '01']);
  });
});

describe('schema patterns on the linear-time engine', () => {
  const schema = (pattern: string) => ({ type: 'object', properties: { word: { type: 'string', pattern } } });

  it('checks ^(a+)+$ in linear time: a 10,000-character near-miss is refused like a short one', () => {
    const check = compileInputSchema({ input_schema: schema('^(a+)+$') });
    expect(check({ word: 'aaaa' })).toEqual({ ok: true });
    for (const word of [`${'a'.repeat(40)}!`, `${'a'.repeat(9_999)}!`]) {
      const r = check({ word });
      expect(r.ok).toBe(false);
      expect(!r.ok && r.problems[0]!.message).toMatch(/^context\.word must match pattern "\^\(a\+\)\+\$" \(found "a+/);
    }
  });

  it('keeps ECMA-262 syntax: \\d, \\u escapes, named groups, unicode classes', () => {
    expect(compileInputSchema({ input_schema: schema('^\\d{3}-\\u00e9(?<x>[a-z])\\p{L}$') })({ word: '123-éaß' })).toEqual({ ok: true });
  });

  it('refuses to check a string longer than MAX_PATTERN_INPUT, saying so', () => {
    const r = compileInputSchema({ input_schema: schema('^a+$') })({ word: 'a'.repeat(MAX_PATTERN_INPUT + 1) });
    expect(r).toEqual({
      ok: false,
      problems: [
        {
          path: 'context.word',
          message: `context.word is ${MAX_PATTERN_INPUT + 1} characters long; weft checks a pattern against at most ${MAX_PATTERN_INPUT} characters (MAX_PATTERN_INPUT): shorten it (and give the schema a maxLength)`,
        },
      ],
    });
  });

  it('stops checking once a context has spent its pattern budget, naming the strings left unchecked', () => {
    // A pattern that defeats RE2's DFA, against many long strings: bounded work, then refusals that say why.
    const check = compileInputSchema({ input_schema: { type: 'array', items: { type: 'string', pattern: '[ab]*a[ab]{60}$' } } });
    const r = check(Array.from({ length: 200 }, (_, i) => 'ab'.repeat(4_000) + String(i % 2 ? 'a' : 'b')));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems.at(-1)!.message).toMatch(
      /was not checked against its pattern: the context's strings checked against input_schema patterns are too long in total/,
    );
  });

  it('finds patterns RE2 cannot run, with the path of the field that holds them', () => {
    expect(
      schemaPatternProblems({
        type: 'object',
        properties: { a: { type: 'string', pattern: '(?=x)x' }, pattern: { type: 'string', pattern: '^ok$' } },
        patternProperties: { '^(\\w)\\1$': {} },
        items: [{ pattern: '(?<!a)b' }],
        examples: [{ pattern: '(?=not a schema)' }],
      })
        .map((p) => [p.at.join('.'), p.message.split(':')[0]])
        .sort(),
    ).toEqual([
      ['items.0.pattern', 'pattern "(?<!a)b" cannot be used'],
      ['patternProperties.^(\\w)\\1$', 'pattern "^(\\\\w)\\\\1$" cannot be used'],
      ['properties.a.pattern', 'pattern "(?=x)x" cannot be used'],
    ]);
    expect(() => compileSchemaPattern('(a{1,9}){1,9}b{1,99}c{1,99}')).toThrow(SchemaPatternError);
    expect(() => compileSchemaPattern('(a{1,9}){1,9}b{1,99}c{1,99}')).toThrow(/compiles to \d+ instructions, more than 500 \(MAX_PATTERN_PROGRAM\)/);
  });
});

describe('a stored template whose pattern RE2 cannot run', () => {
  it('refuses its contexts with a problem that says why and how to fix it, instead of failing the request', () => {
    const r = compileInputSchema({ input_schema: { type: 'object', properties: { x: { type: 'string', pattern: '^(?!admin$).+' } } } })({ x: 'bob' });
    expect(r).toEqual({
      ok: false,
      problems: [
        {
          path: 'context',
          message: expect.stringMatching(
            /^context cannot be checked: a pattern of the template's input_schema cannot be used \(the linear-time pattern engine \(RE2 syntax\) cannot run it: .*\); register a new version of the template without it$/,
          ),
        },
      ],
    });
  });
});
