import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { TemplateDefinition } from './types.js';

// ajv-formats is CommonJS: depending on the loader the default import is the
// plugin itself or a namespace holding it as `default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

/**
 * The ajv instance used for templates' `input_schema`: strict mode off (a
 * user's schema may carry keywords ajv does not know, such as `examples` in
 * odd places), every error collected, standard formats (email, date-time, …).
 */
export function createInputSchemaAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv;
}

export type InputProblem = { path: string; message: string };
export type InputCheck = { ok: true } | { ok: false; problems: InputProblem[] };

/**
 * Compiled checkers by schema text. Each distinct schema gets its own ajv
 * instance: two templates whose schemas share an `$id` would otherwise
 * collide ("schema with key or id already exists"), and ajv's own cache,
 * keyed by object identity, would grow with every template row read.
 */
const compiled = new Map<string, ValidateFunction>();
const MAX_COMPILED = 500;

/**
 * Compile a template's `input_schema` into a checker for task contexts.
 * Problem paths start at `context`, e.g. `context.even_number` or
 * `context.items[2].sku`; each `message` is a sentence that names the path.
 * A template without an input_schema accepts any context.
 *
 * @example
 *   const check = compileInputSchema(template);
 *   const r = check({ even_number: 3 });
 *   if (!r.ok) reply(400, r.problems); // [{ path: 'context.even_number', message: 'context.even_number must be multiple of 2 (found 3)' }]
 */
export function compileInputSchema(template: Pick<TemplateDefinition, 'input_schema'>): (context: unknown) => InputCheck {
  if (template.input_schema === undefined) return () => ({ ok: true });
  const key = JSON.stringify(template.input_schema);
  let validate = compiled.get(key);
  if (validate === undefined) {
    validate = createInputSchemaAjv().compile(template.input_schema);
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
    compiled.set(key, validate);
  }
  const check = validate;
  return (context) => {
    if (check(context)) return { ok: true };
    return { ok: false, problems: (check.errors ?? []).map((e) => describeInputError(e, context)) };
  };
}

function describeInputError(e: ErrorObject, context: unknown): InputProblem {
  const segs = pointerToSegments(e.instancePath);
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty: string }).missingProperty);
    const path = formatContextPath([...segs, missing]);
    return { path, message: `${path} is required but missing` };
  }
  if (e.keyword === 'additionalProperties') {
    const extra = String((e.params as { additionalProperty: string }).additionalProperty);
    const path = formatContextPath([...segs, extra]);
    return { path, message: `${path} is not allowed by the template's input_schema` };
  }
  const path = formatContextPath(segs);
  const found = valueAt(context, segs);
  return { path, message: `${path} ${e.message ?? 'is invalid'} (found ${preview(found)})` };
}

/** `/a/0/b` → ['a', 0, 'b'] (JSON Pointer, RFC 6901). */
export function pointerToSegments(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

function formatContextPath(segs: (string | number)[]): string {
  let out = 'context';
  for (const s of segs) out += typeof s === 'number' ? `[${s}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`;
  return out;
}

function valueAt(root: unknown, segs: (string | number)[]): unknown {
  let v: unknown = root;
  for (const s of segs) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[s];
  }
  return v;
}

function preview(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
