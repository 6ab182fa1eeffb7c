import { describe, expect, it } from 'vitest';
import { compileInputSchema, pointerToSegments } from '../../src/core/template/input-schema.js';

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
