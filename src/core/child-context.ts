/**
 * The context a workflow step hands its child task, built from its own
 * task's context and its parents' results by the step's `context` mapping
 * (docs/templates.md, "Child workflows"). Pure.
 */
import type { ChildContext, ValuePath } from './template/types.js';

/** The value at a path, or undefined when nothing is there. */
function valueAt(p: ValuePath, context: unknown, parents: Record<string, unknown>): unknown {
  let v: unknown = p.from === 'context' ? context : parents[p.step!];
  for (const key of p.path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** How a path was written in the template: `context.order.id`, `price.total`. */
export function pathText(p: ValuePath): string {
  return [p.from === 'context' ? 'context' : p.step!, ...p.path].join('.');
}

/**
 * The child's context: `{}` without a mapping; the mapping at one path (an
 * error when that is not a mapping); or each key's value, keys whose path
 * holds nothing left out (the child's input_schema says what it requires).
 */
export function buildChildContext(
  spec: ChildContext | undefined,
  context: unknown,
  parents: Record<string, unknown>,
): { ok: true; context: Record<string, unknown> } | { ok: false; message: string } {
  if (!spec) return { ok: true, context: {} };
  if ('path' in spec) {
    const v = valueAt(spec.path, context, parents);
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return { ok: true, context: structuredClone(v as Record<string, unknown>) };
    return {
      ok: false,
      message: `the child's context is ${pathText(spec.path)}, which is ${v === undefined ? 'missing' : `not a mapping (${JSON.stringify(v)?.slice(0, 80)})`}`,
    };
  }
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(spec.fields)) {
    const v = 'value' in field ? field.value : valueAt(field.path, context, parents);
    if (v !== undefined) out[key] = structuredClone(v);
  }
  return { ok: true, context: out };
}
