/**
 * Whether a JSON text can be stored as PostgreSQL `jsonb`. jsonb refuses two
 * things JSON allows: the escape `\u0000` and a lone UTF-16 surrogate
 * (`"\ud800"`). A handler result with either would be refused by every
 * write, so the worker checks first and fails the step with a clear,
 * permanent error naming the JSON path instead (issue 9).
 *
 * Cheap on the hot path: a text without any `\u` escape is accepted without
 * being parsed.
 *
 * @example
 *   unstorableJson('{"a":[1,"x\\u0000"]}') // { path: '$.a[1]', problem: 'contains the character U+0000 (NUL)' }
 *   unstorableJson('{"a":1}')               // undefined
 */
export function unstorableJson(text: string): { path: string; problem: string } | undefined {
  if (!text.includes('\\u')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined; // not JSON at all: the caller's own check reports that
  }
  return walk(value, '$');
}

/** A UTF-16 surrogate without its other half. */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function problemOf(s: string): string | undefined {
  if (s.includes('\u0000')) return 'contains the character U+0000 (NUL)';
  if (LONE_SURROGATE.test(s)) return 'contains a lone UTF-16 surrogate (half of a character)';
  return undefined;
}

function walk(v: unknown, path: string): { path: string; problem: string } | undefined {
  if (typeof v === 'string') {
    const problem = problemOf(v);
    return problem ? { path, problem } : undefined;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const found = walk(v[i], `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  if (v && typeof v === 'object') {
    for (const [k, child] of Object.entries(v)) {
      const keyProblem = problemOf(k);
      const at = /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;
      if (keyProblem) return { path: at, problem: `has a key that ${keyProblem}` };
      const found = walk(child, at);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * {@link unstorableJson} for a value already parsed (a request body): the
 * first string or key, in document order, that jsonb cannot store. Walks
 * without recursion, so a value nested thousands deep cannot overflow the stack.
 *
 * @example
 *   unstorableValue({ a: ['ok', 'x\u0000'] }) // { path: '$.a[1]', problem: 'contains the character U+0000 (NUL)' }
 */
export function unstorableValue(root: unknown, rootPath = '$'): { path: string; problem: string } | undefined {
  const stack: Array<[unknown, string]> = [[root, rootPath]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (v instanceof BadKey) return { path, problem: `has a key that ${v.problem}` };
    if (typeof v === 'string') {
      const problem = problemOf(v);
      if (problem) return { path, problem };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`]);
    } else if (v && typeof v === 'object') {
      // A bad key is reported once the siblings before it are found clean: document order.
      const children: Array<[unknown, string]> = [];
      for (const [k, child] of Object.entries(v)) {
        const at = /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;
        const keyProblem = problemOf(k);
        children.push([keyProblem ? new BadKey(keyProblem) : child, at]);
        if (keyProblem) break;
      }
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
    }
  }
  return undefined;
}

class BadKey {
  constructor(readonly problem: string) {}
}
