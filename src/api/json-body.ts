import type { FastifyInstance } from 'fastify';
import { MAX_JSON_DEPTH, jsonDepthProblem, jsonTextDepth } from '../core/json-depth.js';
import { unstorableValue } from '../core/json-storable.js';
import { ValidationError } from '../shared/errors.js';

/**
 * Request bodies nest one level more than the values they carry (`{"context": …}`),
 * so a context of MAX_JSON_DEPTH levels is a body of MAX_JSON_DEPTH + 1.
 */
export const MAX_BODY_DEPTH = MAX_JSON_DEPTH + 1;

/**
 * Replace fastify's JSON parser with one that measures the nesting of the
 * text first (a linear scan, no recursion, no allocation) and answers 400
 * naming the path for a body deeper than {@link MAX_BODY_DEPTH}. A body
 * thousands of levels deep never reaches the parser, the schema validator
 * or JSON.stringify, any of which may overflow the stack on it (a
 * `RangeError` that would be a 500). Prototype poisoning is refused as
 * fastify's own parser does.
 */
export function installJsonBodyParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.decorateRequest('bodyStorable', false);
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body as string;
    if (jsonTextDepth(text, MAX_BODY_DEPTH) > MAX_BODY_DEPTH) {
      const path = deepTextPath(text, MAX_BODY_DEPTH);
      return done(tooDeep(path), undefined);
    }
    // JSON text cannot carry a raw NUL (control characters must be escaped) nor a lone
    // surrogate (the body was decoded from UTF-8): without a `\u` escape every value is storable.
    req.bodyStorable = !text.includes('\\u');
    parse(req, text, (err, value) => (err && text.length > 0 ? done(explainBadJson(text, err), undefined) : done(err, value)));
  });
}

/**
 * fastify's parser answers every refusal with "Body is not valid JSON". Say
 * what is wrong: where the syntax breaks, or which key would have poisoned an
 * object's prototype (`__proto__`, `constructor.prototype`: refused, as
 * fastify does, since a handler's JSON.parse-and-merge could be misled).
 */
function explainBadJson(text: string, original: Error): Error {
  let value: unknown;
  try {
    value = JSON.parse(text); // JSON.parse makes "__proto__" an own property: safe to read here
  } catch (err) {
    return new ValidationError(`the body is not valid JSON: ${(err as Error).message}; send a JSON document with content-type: application/json`, '');
  }
  const path = poisonedKeyPath(value);
  if (path === undefined) return original;
  return new ValidationError(
    `${path} is a key weft refuses (it would set an object's prototype in a JavaScript handler that merges the value); rename the key`,
    path,
  );
}

/** The API path of the first `__proto__` key, or `constructor` holding `prototype`, in a parsed JSON value. */
function poisonedKeyPath(root: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[root, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push([item, `${path}[${i}]`]));
      continue;
    }
    for (const [k, child] of Object.entries(v)) {
      const at = /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}${path ? '.' : ''}${k}` : `${path}[${JSON.stringify(k)}]`;
      if (k === '__proto__') return at;
      if (k === 'constructor' && child !== null && typeof child === 'object' && Object.hasOwn(child, 'prototype')) return `${at}.prototype`;
      stack.push([child, at]);
    }
  }
  return undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The JSON body is known to nest at most MAX_BODY_DEPTH levels and to hold
     * no `\u` escape, so {@link assertStorable} has nothing to find in it: the
     * hot path skips walking the value.
     */
    bodyStorable: boolean;
  }
}

function tooDeep(path: string): ValidationError {
  return new ValidationError(
    `${path || 'the body'} nests deeper than ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH), the most weft stores or hands to a handler; ` +
      'flatten the value, or pass large structures by reference (an id or URL) instead',
    path,
  );
}

/**
 * The API's form of a JSONPath: `$.context.a[0]` → `context.a[0]`, `$` → ``.
 */
export function apiPath(jsonPath: string): string {
  return jsonPath.replace(/^\$\.?/, '');
}

/**
 * Check a parsed value the API will store (a task's context, a template):
 * not deeper than MAX_JSON_DEPTH, and nothing jsonb refuses (`\u0000`, a lone
 * surrogate). Throws a ValidationError naming the path (under `root`; '' for
 * a whole body) and the fix.
 *
 * @example
 *   assertStorable({ a: 'x\u0000' }, 'context') // ValidationError: context.a contains the character U+0000 (NUL) …
 */
export function assertStorable(value: unknown, root: string): void {
  const deep = jsonDepthProblem(value, MAX_JSON_DEPTH);
  if (deep) throw tooDeep(apiPath(root ? deep.path.replace(/^\$/, `$.${root}`) : deep.path));
  assertStorableText(value, root);
}

/** The NUL / lone-surrogate half of {@link assertStorable}, for values whose depth is already bounded (any string field). */
export function assertStorableText(value: unknown, root: string): void {
  const bad = unstorableValue(value, root ? `$.${root}` : '$');
  if (bad) {
    const path = apiPath(bad.path);
    throw new ValidationError(
      `${path || 'the body'} ${bad.problem}, which PostgreSQL cannot store; remove it or encode the data (e.g. base64) before sending`,
      path,
    );
  }
}

/**
 * Where a JSON text first nests deeper than `max`, as an API path
 * (`context.a[0]`), found by one scan of the text; '' when it does not (or
 * when the text is too broken to tell). Only called for a text already known
 * to be too deep.
 */
export function deepTextPath(text: string, max: number): string {
  type Frame = { object: boolean; key: string; index: number; expectKey: boolean };
  const stack: Frame[] = [];
  const pathOf = () => {
    let p = '';
    for (const f of stack) {
      if (!f.object) p += `[${f.index}]`;
      else p += /^[A-Za-z_$][\w$]*$/.test(f.key) ? `${p ? '.' : ''}${f.key}` : `[${JSON.stringify(f.key)}]`;
    }
    return p;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (top?.object && top.expectKey) {
        try {
          top.key = JSON.parse(text.slice(start, i + 1)) as string;
        } catch {
          top.key = text.slice(start + 1, i);
        }
        top.expectKey = false;
      }
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (stack.length + 1 > max) return pathOf();
      stack.push({ object: c === 0x7b, key: '', index: 0, expectKey: c === 0x7b });
    } else if (c === 0x5d || c === 0x7d) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.object) top.expectKey = true;
      else if (top) top.index++;
    }
  }
  return '';
}
