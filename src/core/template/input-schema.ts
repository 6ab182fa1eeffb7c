import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { RE2JS } from 're2js';
import type { TemplateDefinition } from './types.js';

// ajv-formats is CommonJS: depending on the loader the default import is the
// plugin itself or a namespace holding it as `default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

/**
 * Longest string a schema `pattern` is checked against (characters). A
 * longer one fails the check, saying so: give the schema a `maxLength`.
 */
export const MAX_PATTERN_INPUT = 10_000;
/**
 * Largest compiled size (RE2 instructions) of a schema pattern. A pattern's
 * cost per character grows with it; everyday patterns (an e-mail address, a
 * UUID, a semantic version) compile to 10 … 150.
 */
export const MAX_PATTERN_PROGRAM = 500;
/**
 * Work one context check may spend on patterns: characters checked × the
 * size of the pattern checking them. About 0.2 s in the worst case measured
 * (a pattern that defeats RE2's DFA), a few ms for ordinary patterns.
 */
const PATTERN_BUDGET = 10_000_000;

/** A schema pattern weft cannot run in linear time (lookaround, a backreference), or too large. */
export class SchemaPatternError extends Error {
  override name = 'SchemaPatternError';
}

/**
 * Compile a JSON Schema `pattern` (ECMA-262 syntax) for RE2's linear-time
 * engine (re2js, plain JavaScript, so the dashboard runs the same check):
 * no input makes it backtrack, whatever the pattern (issue 15: `^(a+)+$`
 * against 28 characters froze the orchestrator for 1.9 s with JavaScript's
 * own RegExp). RE2 has no lookaround and no backreferences: such a pattern
 * is refused, at template registration, naming the field.
 */
export function compileSchemaPattern(pattern: string): RE2JS {
  if (/(?:^|[^\\])(?:\\\\)*\\(?:[1-9]|k<)/.test(pattern)) {
    throw new SchemaPatternError('it uses a backreference (\\1, \\k<name>), which the linear-time pattern engine cannot run; rewrite it without one');
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch (err) {
    const reason = (err as Error).message.replace(/^error parsing regexp: /, '');
    throw new SchemaPatternError(
      `the linear-time pattern engine (RE2 syntax) cannot run it: ${reason}; lookahead, lookbehind and backreferences are not supported, rewrite the pattern without them`,
    );
  }
  if (re.programSize() > MAX_PATTERN_PROGRAM) {
    throw new SchemaPatternError(
      `it compiles to ${re.programSize()} instructions, more than ${MAX_PATTERN_PROGRAM} (MAX_PATTERN_PROGRAM); use a simpler pattern, or smaller repetition counts`,
    );
  }
  return re;
}

/** What the current context check has spent on patterns, and the strings it left unchecked (see PATTERN_BUDGET). */
const patternSpend = { used: 0, skipped: new Set<string>() };

/** ajv's `code.regExp`: every schema pattern runs on RE2, within the input and budget limits above. */
const linearRegExp = Object.assign(
  (pattern: string) => {
    const re = compileSchemaPattern(pattern);
    const size = re.programSize();
    return {
      test(s: string): boolean {
        if (s.length > MAX_PATTERN_INPUT) return false;
        patternSpend.used += s.length * size;
        if (patternSpend.used > PATTERN_BUDGET) {
          patternSpend.skipped.add(s);
          return false;
        }
        return re.test(s);
      },
      // ajv caches compiled patterns by this text.
      toString: () => `/${pattern}/`,
    };
  },
  { code: 'weftLinearRegExp' },
);

/**
 * The ajv instance used for templates' `input_schema`: strict mode off (a
 * user's schema may carry keywords ajv does not know, such as `examples` in
 * odd places), every error collected, standard formats (email, date-time, …),
 * patterns on RE2 ({@link compileSchemaPattern}).
 */
export function createInputSchemaAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true, code: { regExp: linearRegExp } });
  addFormats(ajv);
  return ajv;
}

/** Keywords whose value maps names to subschemas; under `patternProperties` the names are patterns too. */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'definitions', '$defs', 'dependentSchemas', 'dependencies']);
/** Keywords whose value is data, not a schema: no pattern lives there. */
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples', 'example']);

/**
 * Every schema pattern (`pattern`, `patternProperties` keys) the linear-time
 * engine refuses, with the path of the field that holds it under
 * `input_schema` (e.g. `['properties', 'code', 'pattern']`).
 */
export function schemaPatternProblems(schema: unknown): Array<{ at: (string | number)[]; message: string }> {
  const out: Array<{ at: (string | number)[]; message: string }> = [];
  const check = (pattern: string, at: (string | number)[]) => {
    try {
      compileSchemaPattern(pattern);
    } catch (err) {
      if (!(err instanceof SchemaPatternError)) throw err;
      out.push({ at, message: `pattern ${JSON.stringify(pattern)} cannot be used: ${err.message}` });
    }
  };
  const stack: Array<{ node: unknown; at: (string | number)[] }> = [{ node: schema, at: [] }];
  while (stack.length > 0) {
    const { node, at } = stack.pop()!;
    if (Array.isArray(node)) {
      node.forEach((item, i) => stack.push({ node: item, at: [...at, i] }));
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'pattern' && typeof value === 'string') check(value, [...at, key]);
      else if (SCHEMA_MAPS.has(key) && value !== null && typeof value === 'object' && !Array.isArray(value)) {
        for (const [name, sub] of Object.entries(value)) {
          if (key === 'patternProperties') check(name, [...at, key, name]);
          stack.push({ node: sub, at: [...at, key, name] });
        }
      } else if (!DATA_KEYWORDS.has(key)) stack.push({ node: value, at: [...at, key] });
    }
  }
  return out;
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
export function compileInputSchema(template: Pick<TemplateDefinition, 'input_schema'>, root = 'context'): (context: unknown) => InputCheck {
  if (template.input_schema === undefined) return () => ({ ok: true });
  const key = JSON.stringify(template.input_schema);
  let validate = compiled.get(key);
  if (validate === undefined) {
    try {
      validate = createInputSchemaAjv().compile(template.input_schema);
    } catch (err) {
      // A version registered before patterns ran on RE2 may hold one RE2 cannot run: refuse its contexts, saying why.
      if (!(err instanceof SchemaPatternError)) throw err;
      const problem = {
        path: 'context',
        message: `context cannot be checked: a pattern of the template's input_schema cannot be used (${err.message}); register a new version of the template without it`,
      };
      return () => ({ ok: false, problems: [problem] });
    }
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
    compiled.set(key, validate);
  }
  const check = validate;
  return (context) => {
    patternSpend.used = 0;
    patternSpend.skipped.clear();
    if (check(context)) return { ok: true };
    return { ok: false, problems: (check.errors ?? []).map((e) => describeInputError(e, context, root)) };
  };
}

function describeInputError(e: ErrorObject, context: unknown, root: string): InputProblem {
  if (e.keyword === 'pattern') {
    const path = formatContextPath(pointerToSegments(e.instancePath), root);
    const found = valueAt(context, pointerToSegments(e.instancePath));
    if (typeof found === 'string' && found.length > MAX_PATTERN_INPUT) {
      return {
        path,
        message: `${path} is ${found.length} characters long; weft checks a pattern against at most ${MAX_PATTERN_INPUT} characters (MAX_PATTERN_INPUT): shorten it (and give the schema a maxLength)`,
      };
    }
    if (typeof found === 'string' && patternSpend.skipped.has(found)) {
      return {
        path,
        message: `${path} was not checked against its pattern: the context's strings checked against input_schema patterns are too long in total for this template's patterns; send shorter or fewer strings`,
      };
    }
  }
  const segs = pointerToSegments(e.instancePath);
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty: string }).missingProperty);
    const path = formatContextPath([...segs, missing], root);
    return { path, message: `${path} is required but missing` };
  }
  if (e.keyword === 'additionalProperties') {
    const extra = String((e.params as { additionalProperty: string }).additionalProperty);
    const path = formatContextPath([...segs, extra], root);
    return { path, message: `${path} is not allowed by ${root === 'context' ? "the template's input_schema" : "the step's payload_schema"}` };
  }
  const path = formatContextPath(segs, root);
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

function formatContextPath(segs: (string | number)[], root: string): string {
  let out = root;
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
