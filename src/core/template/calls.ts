/**
 * Templates that run other templates as child workflows (`workflow` steps).
 * A cycle of templates calling each other would start children forever, so
 * `weft validate` and every registration refuse one (the orchestrator also
 * stops a chain of children at LIMITS.workflow_depth, for what versions not
 * pinned could still build at run time). Pure: callers bring the templates.
 */
import type { TemplateProblem } from './errors.js';
import { templateKey, type TemplateDefinition, type WorkflowRef } from './types.js';

/** A workflow step's reference to its child template. */
export interface TemplateCall {
  step: string;
  ref: WorkflowRef;
}

/** The workflow steps of a template and the templates they run. */
export function templateCalls(def: TemplateDefinition): TemplateCall[] {
  const out: TemplateCall[] = [];
  for (const s of def.steps) if (s.wait && 'workflow' in s.wait) out.push({ step: s.name, ref: s.wait.workflow });
  return out;
}

/** `namespace/name@version` (or `namespace/name`, any version) of a reference. */
export function refLabel(ref: WorkflowRef): string {
  return `${ref.namespace}/${ref.name}${ref.version ? `@${ref.version}` : ''}`;
}

/**
 * A cycle of calls among `defs`, as the template keys and steps along it
 * (`a/x@1.0.0 (step s) → a/y@1.0.0 (step t) → a/x@1.0.0`), or undefined.
 * A reference without a version may run any registered version, so it
 * counts as a call to each of them.
 */
export function findCallCycle(defs: readonly TemplateDefinition[]): string | undefined {
  const byName = new Map<string, TemplateDefinition[]>();
  for (const d of defs) {
    const k = `${d.namespace}/${d.name}`;
    byName.set(k, [...(byName.get(k) ?? []), d]);
  }
  const callees = (d: TemplateDefinition) =>
    templateCalls(d).flatMap((c) =>
      (byName.get(`${c.ref.namespace}/${c.ref.name}`) ?? []).filter((t) => !c.ref.version || t.version === c.ref.version).map((t) => ({ step: c.step, to: t })),
    );
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (d: TemplateDefinition): string | undefined => {
    const key = templateKey(d);
    state.set(key, 'open');
    for (const { step, to } of callees(d)) {
      path.push(`${key} (step ${step})`);
      const seen = state.get(templateKey(to));
      if (seen === 'open') {
        const start = path.findIndex((p) => p.startsWith(`${templateKey(to)} `));
        return [...path.slice(start), templateKey(to)].join(' → ');
      }
      if (seen === undefined) {
        const found = visit(to);
        if (found) return found;
      }
      path.pop();
    }
    state.set(key, 'done');
    return undefined;
  };
  for (const d of defs) {
    if (state.has(templateKey(d))) continue;
    const found = visit(d);
    if (found) return found;
  }
  return undefined;
}

/** The cycle among the files' templates as a problem of the first file on it, for `weft validate`. */
export function callCycleProblems(files: readonly { file: string; def: TemplateDefinition }[]): TemplateProblem[] {
  const cycle = findCallCycle(files.map((f) => f.def));
  if (!cycle) return [];
  const [, first, stepName] = /^(\S+) \(step (\S+)\)/.exec(cycle)!;
  const { file, def } = files.find((f) => templateKey(f.def) === first)!;
  const step = def.steps.findIndex((s) => s.name === stepName);
  return [
    {
      file,
      path: `steps[${step}].workflow`,
      message: `templates run each other as child workflows in a cycle, so a task would start children forever: ${cycle}`,
      hint: 'break the cycle: one of these workflow steps must run another template (or pin a version that does not call back)',
    },
  ];
}
