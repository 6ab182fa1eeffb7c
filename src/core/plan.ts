/**
 * The DAG model of one task: which step instances exist, and their parents.
 *
 * A template names steps; a task holds step *instances*. Most steps have one
 * instance with the template step's name. Two kinds of steps sit behind a
 * *gate* and exist only once the gate has produced its outcome:
 *
 * - the direct children of a `decision` step (the branches): created only
 *   when the decision chooses them;
 * - the `batch_worker` step of a `batchable` step: instantiated once per cursor
 *   (`<worker>_001`, `<worker>_002`, …) when the batchable step returns them.
 *
 * Everything downstream of a gated step waits for that gate too. A
 * `deferred_convergence` step joins whatever branches were actually created:
 * its parents are `declared deps ∩ created steps`, and it is created as soon
 * as none of its declared deps can still appear.
 *
 * All three entry points (`initialSteps`, `expandDecision`, `expandBatch`)
 * are one walk over the template in topological order (`expand` below) that
 * classifies every step not yet existing as
 *   created — exists after this call (returned, in topological order);
 *   pending — may still appear later (it waits for a gate that has not resolved);
 *   dead    — can no longer appear (an unchosen branch, or downstream only of those).
 * so the rules live in one place and the three calls cannot disagree.
 */
import { WeftError } from '../shared/errors.js';
import type { StepState } from './states.js';
import type { Runtime } from '../shared/runtimes.js';
import type { RetryPolicy, StepDefinition, StepType, TemplateDefinition, WaitSpec } from './template/types.js';
import { templateKey } from './template/types.js';

/** A step instance to create, with its parents (edges parent → this). */
export interface PlannedStep {
  /** Instance name, unique in the task (batch workers: `<worker>_001`). */
  name: string;
  /** The template step it comes from. */
  template_step: string;
  type: StepType;
  runtime: Runtime;
  handler: string;
  inputs: Record<string, unknown>;
  max_attempts: number;
  timeout_ms: number;
  /** The template step's whole retry policy (what `decideAfterFailure` needs). */
  retry: RetryPolicy;
  batch: null | { cursor: unknown; index: number; total: number; no_op: boolean };
  /** Instance names of its parents. */
  parents: string[];
  /** What a sleep or wait step waits for (steps.wait); null for a step a handler runs. */
  wait: WaitSpec | null;
}

/** A step instance the task already has. */
export interface ExistingStep {
  name: string;
  template_step: string;
  /**
   * Its current state. Optional, but pass it: it is how a decision step that
   * completed having chosen nothing is told apart from one still running, when
   * a convergence step joins the branches of several decisions. Without it, a
   * decision with no created child is assumed not to have decided yet.
   */
  state?: StepState;
}

/** A decision step's outcome cannot be applied. Permanent: the handler returned the wrong thing. */
export class DecisionError extends WeftError {
  override name = 'DecisionError';
  readonly permanent = true;
  constructor(message: string) {
    super('decision_invalid', message);
  }
}

/** A batchable step's outcome cannot be applied. Permanent: the handler returned the wrong thing. */
export class BatchError extends WeftError {
  override name = 'BatchError';
  readonly permanent = true;
  constructor(message: string) {
    super('batch_invalid', message);
  }
}

/**
 * The steps created together with the task: every step not behind a gate.
 * That excludes the branches of decision steps, batch workers, and everything
 * downstream of either. A `deferred_convergence` step none of whose deps is
 * gated is created here like any other step (nothing could ever create it later).
 * Returned in topological order.
 *
 * @example
 *   // validate → route (decision) → auto_approve | manager_approval → finalize (deferred_convergence)
 *   initialSteps(t).map((s) => s.name) // ['validate', 'route']
 */
export function initialSteps(t: TemplateDefinition): PlannedStep[] {
  return expand(t, [], null);
}

/**
 * A decision step completed and chose `chosen` (template step names, each a
 * direct child of the decision; `[]` = no branch). Returns the new steps, in
 * topological order: the chosen branches (parents: their declared deps that
 * exist), every step they unlock (a standard/decision/batchable step once all
 * its deps exist), and every `deferred_convergence` step none of whose deps
 * can still appear (parents: declared ∩ existing-or-created; not created when
 * that is empty). Steps behind another gate wait for that gate's own outcome.
 * Idempotent: what already exists is never re-created, so a second call returns [].
 * Throws DecisionError when a chosen name is not a direct child.
 *
 * @example
 *   expandDecision(t, [{ name: 'validate', template_step: 'validate' }, { name: 'route', template_step: 'route' }],
 *                  'route', ['manager_approval'])
 *   // [manager_approval (parents [route]), finalize (parents [manager_approval])]
 */
export function expandDecision(t: TemplateDefinition, existing: ExistingStep[], decisionStep: string, chosen: string[]): PlannedStep[] {
  const def = t.steps.find((s) => s.name === decisionStep);
  if (!def) {
    throw new DecisionError(
      `template ${templateKey(t)} has no step "${decisionStep}" to expand a decision for; known steps: ${t.steps.map((s) => s.name).join(', ')}`,
    );
  }
  if (def.type !== 'decision') {
    throw new DecisionError(
      `step "${decisionStep}" of template ${templateKey(t)} is a ${def.type} step, not a decision step; only a decision step's outcome chooses branches`,
    );
  }
  if (!existing.some((e) => e.template_step === decisionStep)) {
    throw new DecisionError(
      `decision step "${decisionStep}" has no instance in this task, so its outcome cannot be applied; expand a decision only after its step exists and completed`,
    );
  }
  const children = t.steps.filter((s) => s.depends_on.includes(decisionStep)).map((s) => s.name);
  const bad = chosen.filter((c) => !children.includes(c));
  if (bad.length) {
    throw new DecisionError(
      `decision step "${decisionStep}" chose ${bad.map((b) => `"${b}"`).join(', ')}, which ${bad.length === 1 ? 'is not a direct child' : 'are not direct children'} of it in template ${templateKey(t)}; ` +
        `it may choose any of: ${children.length ? children.join(', ') : '(none: it has no children)'}, or an empty list for no branch. ` +
        `Fix the handler to return only these names`,
    );
  }
  return expand(t, existing, { kind: 'decision', step: decisionStep, chosen: new Set(chosen) });
}

/**
 * A batchable step completed with `cursors`. Creates one instance of its
 * `batch.worker_template` per cursor, `<worker>_001`, `<worker>_002`, … (three
 * digits, more past 999), each with parents [batchable step], the worker
 * template's inputs and `batch: { cursor, index (1-based), total, no_op: false }`.
 * With no cursors, one placeholder `<worker>_000` with
 * `batch: { cursor: null, index: 0, total: 0, no_op: true }` keeps the graph
 * converging (the orchestrator may complete it without running the handler).
 * Then the steps depending on the worker template (parents: all created
 * workers plus their other declared deps that exist) and whatever they unlock.
 * Idempotent. Throws BatchError when there are more cursors than `batch.max_workers`.
 *
 * @example
 *   expandBatch(t, [{ name: 'analyze_csv', template_step: 'analyze_csv' }], 'analyze_csv', [{ offset: 0 }, { offset: 200 }])
 *   // [process_csv_batch_001, process_csv_batch_002, aggregate (parents: both workers)]
 */
export function expandBatch(t: TemplateDefinition, existing: ExistingStep[], batchableStep: string, cursors: unknown[]): PlannedStep[] {
  const def = t.steps.find((s) => s.name === batchableStep);
  if (!def) {
    throw new BatchError(
      `template ${templateKey(t)} has no step "${batchableStep}" to expand batches for; known steps: ${t.steps.map((s) => s.name).join(', ')}`,
    );
  }
  if (def.type !== 'batchable' || !def.batch) {
    throw new BatchError(
      `step "${batchableStep}" of template ${templateKey(t)} is a ${def.type} step${def.type === 'batchable' ? ' without a batch: section' : ''}, not a batchable step with batch.worker_template; only such a step's outcome creates workers`,
    );
  }
  const worker = t.steps.find((s) => s.name === def.batch!.worker_template);
  if (!worker || worker.type !== 'batch_worker') {
    throw new BatchError(
      `batchable step "${batchableStep}" names worker template "${def.batch.worker_template}", which ${worker ? `is a ${worker.type} step, not a batch_worker step` : 'is not a step of the template'}; fix batch.worker_template in template ${templateKey(t)}`,
    );
  }
  if (!existing.some((e) => e.template_step === batchableStep)) {
    throw new BatchError(
      `batchable step "${batchableStep}" has no instance in this task, so its outcome cannot be applied; expand batches only after its step exists and completed`,
    );
  }
  const max = def.batch.max_workers;
  if (cursors.length > max) {
    throw new BatchError(
      `batchable step "${batchableStep}" returned ${cursors.length} cursors, but batch.max_workers is ${max}; ` +
        `return at most ${max} cursors (let each cursor cover more items), or raise batch.max_workers in template ${templateKey(t)}`,
    );
  }
  const workers: PlannedStep[] =
    cursors.length === 0
      ? [instance(worker, workerName(worker.name, 0), [batchableStep], { cursor: null, index: 0, total: 0, no_op: true })]
      : cursors.map((cursor, i) =>
          instance(worker, workerName(worker.name, i + 1), [batchableStep], {
            cursor,
            index: i + 1,
            total: cursors.length,
            no_op: false,
          }),
        );
  const taken = new Set([...t.steps.map((s) => s.name), ...existing.filter((e) => e.template_step !== worker.name).map((e) => e.name)]);
  const clash = workers.find((w) => taken.has(w.name));
  if (clash) {
    throw new BatchError(
      `batch worker instance name "${clash.name}" is already the name of another step of template ${templateKey(t)}; rename that step or the worker template "${worker.name}"`,
    );
  }
  return expand(t, existing, { kind: 'batch', step: batchableStep, workers });
}

/**
 * Instance name of batch worker number `index` (0 = the no-op placeholder).
 *
 * @example workerName('process_csv_batch', 7) // 'process_csv_batch_007'
 */
export function workerName(workerTemplate: string, index: number): string {
  return `${workerTemplate}_${String(index).padStart(3, '0')}`;
}

// ---------------------------------------------------------------------------

type Trigger = null | { kind: 'decision'; step: string; chosen: ReadonlySet<string> } | { kind: 'batch'; step: string; workers: PlannedStep[] };

type Status = 'existing' | 'created' | 'pending' | 'dead';
type GateVerdict = 'open' | 'pending' | 'dead';

/** States after which a gate will produce no (further) outcome. */
const GATE_SETTLED: ReadonlySet<StepState> = new Set(['complete', 'error', 'cancelled']);

function expand(t: TemplateDefinition, existing: ExistingStep[], trigger: Trigger): PlannedStep[] {
  const byName = new Map(t.steps.map((s) => [s.name, s]));
  const instances = new Map<string, string[]>();
  const states = new Map<string, StepState | undefined>();
  for (const e of existing) {
    if (!byName.has(e.template_step)) {
      throw new Error(
        `existing step "${e.name}" comes from template step "${e.template_step}", which template ${templateKey(t)} does not have; pass the template version the task was created from`,
      );
    }
    instances.set(e.template_step, [...(instances.get(e.template_step) ?? []), e.name]);
    states.set(e.template_step, e.state);
  }
  /** Batchable steps whose worker template is `name`. */
  const owners = (name: string) => t.steps.filter((s) => s.type === 'batchable' && s.batch?.worker_template === name);

  const status = new Map<string, Status>();
  const out: PlannedStep[] = [];
  const available = (d: string) => status.get(d) === 'existing' || status.get(d) === 'created';
  const parentsOf = (deps: string[]) => deps.filter(available).flatMap((d) => instances.get(d) ?? []);
  const create = (p: PlannedStep) => {
    out.push(p);
    instances.set(p.template_step, [...(instances.get(p.template_step) ?? []), p.name]);
    status.set(p.template_step, 'created');
  };

  /** Has gate `g` (which exists) produced its outcome already? */
  const settled = (g: StepDefinition): boolean => {
    const state = states.get(g.name);
    if (state !== undefined) return GATE_SETTLED.has(state);
    // No state given: an outcome is visible only through what it created.
    if (g.type === 'decision') return t.steps.some((s) => s.depends_on.includes(g.name) && instances.has(s.name));
    return g.batch !== undefined && instances.has(g.batch.worker_template);
  };

  /** May `s` exist, as far as gate `g` (a decision parent, or the batchable owning worker `s`) is concerned? */
  const gateVerdict = (g: StepDefinition, s: StepDefinition): GateVerdict => {
    if (trigger && trigger.step === g.name) {
      return trigger.kind === 'batch' || trigger.chosen.has(s.name) ? 'open' : 'dead';
    }
    const st = status.get(g.name);
    if (st === 'dead') return 'dead';
    if (st === 'created' || st === 'pending') return 'pending';
    // The gate exists: once it has settled, a child that does not exist was not chosen.
    return settled(g) ? 'dead' : 'pending';
  };

  for (const s of topologicalOrder(t)) {
    if (instances.has(s.name)) {
      status.set(s.name, 'existing');
      continue;
    }
    const gates = [...s.depends_on.map((d) => byName.get(d)!).filter((d) => d.type === 'decision'), ...(s.type === 'batch_worker' ? owners(s.name) : [])];
    const verdicts = gates.map((g) => gateVerdict(g, s));
    if (verdicts.includes('dead')) {
      status.set(s.name, 'dead');
      continue;
    }
    if (verdicts.includes('pending')) {
      status.set(s.name, 'pending');
      continue;
    }
    if (s.type === 'batch_worker') {
      // Open only when this call's trigger is its batchable step.
      if (trigger?.kind === 'batch' && gates.some((g) => g.name === trigger.step)) trigger.workers.forEach(create);
      else status.set(s.name, 'dead'); // a worker no batchable step names can never be created
      continue;
    }
    if (trigger?.kind === 'decision' && gates.some((g) => g.name === trigger.step)) {
      // A chosen branch: the decision's word is final, so it is created now
      // with whichever of its declared deps exist.
      create(instance(s, s.name, parentsOf(s.depends_on)));
      continue;
    }
    const deps = s.depends_on.map((d) => status.get(d)!);
    if (s.type === 'deferred_convergence') {
      // Wait until no declared dep can still appear, then join those that did.
      if (deps.includes('pending')) status.set(s.name, 'pending');
      else if (deps.some((d) => d === 'existing' || d === 'created')) create(instance(s, s.name, parentsOf(s.depends_on)));
      else status.set(s.name, 'dead');
    } else if (deps.every((d) => d === 'existing' || d === 'created')) {
      create(instance(s, s.name, parentsOf(s.depends_on)));
    } else {
      status.set(s.name, deps.includes('dead') ? 'dead' : 'pending');
    }
  }
  return out;
}

function instance(s: StepDefinition, name: string, parents: string[], batch: PlannedStep['batch'] = null): PlannedStep {
  return {
    name,
    template_step: s.name,
    type: s.type,
    runtime: s.runtime,
    handler: s.handler,
    inputs: { ...s.inputs },
    max_attempts: s.retry.max_attempts,
    timeout_ms: s.timeout_ms,
    retry: { ...s.retry },
    batch,
    parents,
    wait: s.wait ?? null,
  };
}

/**
 * Template steps, parents before children; ties keep template order so the
 * output is deterministic. The parser rejects cycles and unknown deps; they
 * are re-checked here because planning on a broken graph would silently lose steps.
 */
export function topologicalOrder(t: TemplateDefinition): StepDefinition[] {
  const byName = new Map(t.steps.map((s) => [s.name, s]));
  for (const s of t.steps) {
    for (const d of s.depends_on) {
      if (!byName.has(d)) {
        throw new Error(`template ${templateKey(t)}: step "${s.name}" depends on "${d}", which is not a step of the template`);
      }
    }
  }
  const done = new Set<string>();
  const order: StepDefinition[] = [];
  while (order.length < t.steps.length) {
    const next = t.steps.filter((s) => !done.has(s.name) && s.depends_on.every((d) => done.has(d)));
    if (next.length === 0) {
      const stuck = t.steps.filter((s) => !done.has(s.name)).map((s) => s.name);
      throw new Error(`template ${templateKey(t)}: steps ${stuck.join(', ')} form or depend on a cycle; a template must be acyclic`);
    }
    for (const s of next) {
      done.add(s.name);
      order.push(s);
    }
  }
  return order;
}
