import { describe, expect, it } from 'vitest';
import {
  BatchError,
  DecisionError,
  expandBatch,
  expandDecision,
  initialSteps,
  topologicalOrder,
  workerName,
  type ExistingStep,
  type PlannedStep,
} from '../../src/core/plan.js';
import type { StepDefinition, StepType, TemplateDefinition } from '../../src/core/template/types.js';

/** A step with every field spelled out; `extra` overrides. */
function step(name: string, type: StepType, depends_on: string[], extra: Partial<StepDefinition> = {}): StepDefinition {
  return {
    name,
    handler: `h.${name}`,
    runtime: 'typescript',
    type,
    depends_on,
    inputs: { from: name },
    retry: { max_attempts: 3, backoff: 'exponential', base_ms: 100, max_ms: 10_000 },
    timeout_ms: 30_000,
    ...extra,
  };
}

function template(name: string, steps: StepDefinition[]): TemplateDefinition {
  return { namespace: 'test', name, version: '1.0.0', description: `${name} test template`, runtime: 'typescript', steps };
}

const names = (ps: PlannedStep[]) => ps.map((p) => p.name);
const parents = (ps: PlannedStep[]) => Object.fromEntries(ps.map((p) => [p.name, p.parents]));
const asExisting = (ps: PlannedStep[]): ExistingStep[] => ps.map((p) => ({ name: p.name, template_step: p.template_step }));

const linear = template('linear', [
  step('linear_step_1', 'standard', []),
  step('linear_step_2', 'standard', ['linear_step_1']),
  step('linear_step_3', 'standard', ['linear_step_2']),
  step('linear_step_4', 'standard', ['linear_step_3']),
]);

const diamond = template('diamond', [
  step('diamond_end', 'standard', ['diamond_left', 'diamond_right']),
  step('diamond_left', 'standard', ['diamond_start']),
  step('diamond_right', 'standard', ['diamond_start']),
  step('diamond_start', 'standard', []),
]);

const approval = template('approval', [
  step('validate_request', 'standard', []),
  step('route_by_amount', 'decision', ['validate_request']),
  step('auto_approve', 'standard', ['route_by_amount']),
  step('manager_approval', 'standard', ['route_by_amount']),
  step('finance_review', 'standard', ['route_by_amount']),
  step('finalize_approval', 'deferred_convergence', ['auto_approve', 'manager_approval', 'finance_review']),
  step('notify', 'standard', ['finalize_approval']),
]);

const csv = template('csv', [
  step('analyze_csv', 'batchable', [], {
    batch: { worker_template: 'process_csv_batch', batch_size: 200, max_workers: 5 },
  }),
  step('process_csv_batch', 'batch_worker', ['analyze_csv'], { inputs: { delimiter: ',' } }),
  step('aggregate_results', 'deferred_convergence', ['process_csv_batch']),
  step('publish_report', 'standard', ['aggregate_results']),
]);

describe('initialSteps', () => {
  it('creates every step of a linear template, each with its declared parent', () => {
    const ps = initialSteps(linear);
    expect(names(ps)).toEqual(['linear_step_1', 'linear_step_2', 'linear_step_3', 'linear_step_4']);
    expect(parents(ps)).toEqual({
      linear_step_1: [],
      linear_step_2: ['linear_step_1'],
      linear_step_3: ['linear_step_2'],
      linear_step_4: ['linear_step_3'],
    });
  });

  it('orders a diamond parents-first whatever the template order, and copies the step fields', () => {
    const ps = initialSteps(diamond);
    expect(names(ps)).toEqual(['diamond_start', 'diamond_left', 'diamond_right', 'diamond_end']);
    expect(parents(ps).diamond_end).toEqual(['diamond_left', 'diamond_right']);
    expect(ps[0]).toEqual({
      name: 'diamond_start',
      template_step: 'diamond_start',
      type: 'standard',
      runtime: 'typescript',
      handler: 'h.diamond_start',
      inputs: { from: 'diamond_start' },
      max_attempts: 3,
      timeout_ms: 30_000,
      retry: { max_attempts: 3, backoff: 'exponential', base_ms: 100, max_ms: 10_000 },
      batch: null,
      wait: null,
      parents: [],
    });
  });

  it('leaves out the branches of a decision and everything downstream of them', () => {
    expect(names(initialSteps(approval))).toEqual(['validate_request', 'route_by_amount']);
  });

  it('leaves out batch workers and everything downstream of them', () => {
    expect(names(initialSteps(csv))).toEqual(['analyze_csv']);
  });

  it('creates a deferred_convergence step that no gate stands before (nothing else ever would)', () => {
    const t = template('plain_join', [step('a', 'standard', []), step('b', 'standard', []), step('join', 'deferred_convergence', ['a', 'b'])]);
    expect(parents(initialSteps(t))).toEqual({ a: [], b: [], join: ['a', 'b'] });
  });

  it('creates steps that depend on a batchable step directly (only its worker is gated)', () => {
    const t = template('side', [...csv.steps, step('audit_input', 'standard', ['analyze_csv'])]);
    expect(names(initialSteps(t))).toEqual(['analyze_csv', 'audit_input']);
  });

  it('refuses a cyclic template, naming the steps', () => {
    const t = template('cyclic', [step('a', 'standard', ['b']), step('b', 'standard', ['a'])]);
    expect(() => initialSteps(t)).toThrow('steps a, b form or depend on a cycle');
    expect(() => topologicalOrder(template('unknown', [step('a', 'standard', ['zz'])]))).toThrow(
      'step "a" depends on "zz", which is not a step of the template',
    );
  });
});

describe('expandDecision', () => {
  const start = asExisting(initialSteps(approval));

  it.each([
    { chosen: ['auto_approve'], finalizeParents: ['auto_approve'] },
    { chosen: ['manager_approval'], finalizeParents: ['manager_approval'] },
    { chosen: ['manager_approval', 'finance_review'], finalizeParents: ['manager_approval', 'finance_review'] },
  ])('routes $chosen: creates them, then finalize_approval joining exactly those, then notify', ({ chosen, finalizeParents }) => {
    const ps = expandDecision(approval, start, 'route_by_amount', chosen);
    expect(names(ps)).toEqual([...chosen, 'finalize_approval', 'notify']);
    for (const c of chosen) expect(parents(ps)[c]).toEqual(['route_by_amount']);
    expect(parents(ps).finalize_approval).toEqual(finalizeParents);
    expect(parents(ps).notify).toEqual(['finalize_approval']);
  });

  it('creates nothing when the decision chooses nothing and no convergence step has another parent', () => {
    expect(expandDecision(approval, start, 'route_by_amount', [])).toEqual([]);
  });

  it('still converges when the decision chooses nothing: the join keeps its other existing parents', () => {
    const t = template('approval_pre', [
      ...approval.steps.filter((s) => s.name !== 'finalize_approval'),
      step('finalize_approval', 'deferred_convergence', ['validate_request', 'auto_approve', 'manager_approval']),
    ]);
    const ps = expandDecision(t, asExisting(initialSteps(t)), 'route_by_amount', []);
    expect(parents(ps)).toEqual({ finalize_approval: ['validate_request'], notify: ['finalize_approval'] });
  });

  it('refuses a name that is not a direct child, saying which names are allowed', () => {
    const call = () => expandDecision(approval, start, 'route_by_amount', ['auto_approve', 'finalize_approval']);
    expect(call).toThrow(DecisionError);
    expect(call).toThrow(
      'decision step "route_by_amount" chose "finalize_approval", which is not a direct child of it in template test/approval@1.0.0; ' +
        'it may choose any of: auto_approve, manager_approval, finance_review, or an empty list for no branch',
    );
    try {
      call();
    } catch (e) {
      expect((e as DecisionError).name).toBe('DecisionError');
      expect((e as DecisionError).permanent).toBe(true);
    }
  });

  it('refuses a step that is not a decision, or one the task does not have', () => {
    expect(() => expandDecision(approval, start, 'validate_request', [])).toThrow(
      'step "validate_request" of template test/approval@1.0.0 is a standard step, not a decision step',
    );
    expect(() => expandDecision(approval, start, 'nope', [])).toThrow('template test/approval@1.0.0 has no step "nope"');
    expect(() => expandDecision(approval, [], 'route_by_amount', [])).toThrow('decision step "route_by_amount" has no instance in this task');
  });

  it('is idempotent: a second call with the same outcome creates nothing', () => {
    const first = expandDecision(approval, start, 'route_by_amount', ['manager_approval']);
    expect(first.length).toBe(3);
    expect(expandDecision(approval, [...start, ...asExisting(first)], 'route_by_amount', ['manager_approval'])).toEqual([]);
  });

  it('ignores a duplicated choice', () => {
    const ps = expandDecision(approval, start, 'route_by_amount', ['auto_approve', 'auto_approve']);
    expect(names(ps)).toEqual(['auto_approve', 'finalize_approval', 'notify']);
  });

  it('unlocks a chain behind the branch, stopping at a nested decision until that one decides', () => {
    const t = template('nested', [
      step('outer', 'decision', []),
      step('branch_a', 'standard', ['outer']),
      step('branch_b', 'standard', ['outer']),
      step('after_a', 'standard', ['branch_a']),
      step('inner', 'decision', ['after_a']),
      step('inner_x', 'standard', ['inner']),
      step('inner_y', 'standard', ['inner']),
      step('inner_join', 'deferred_convergence', ['inner_x', 'inner_y']),
      step('final_join', 'deferred_convergence', ['inner_join', 'branch_b']),
    ]);
    const init = initialSteps(t);
    expect(names(init)).toEqual(['outer']);
    const outer = expandDecision(t, asExisting(init), 'outer', ['branch_a']);
    // final_join waits: inner_join may still appear once `inner` decides.
    expect(parents(outer)).toEqual({ branch_a: ['outer'], after_a: ['branch_a'], inner: ['after_a'] });
    const existing = asExisting([...init, ...outer]);
    const inner = expandDecision(t, existing, 'inner', ['inner_y']);
    expect(parents(inner)).toEqual({ inner_y: ['inner'], inner_join: ['inner_y'], final_join: ['inner_join'] });
    expect(expandDecision(t, [...existing, ...asExisting(inner)], 'inner', ['inner_y'])).toEqual([]);
  });

  it('lets a convergence step wait for a second decision, and join when that one settles having chosen nothing', () => {
    const t = template('two_decisions', [
      step('d1', 'decision', []),
      step('d2', 'decision', []),
      step('a', 'standard', ['d1']),
      step('b', 'standard', ['d2']),
      step('join', 'deferred_convergence', ['a', 'b']),
    ]);
    const init = asExisting(initialSteps(t));
    expect(init.map((e) => e.name)).toEqual(['d1', 'd2']);
    // d2 still running: join must not be created yet, or b could never join it.
    const running = init.map((e) => ({ ...e, state: e.name === 'd2' ? ('running' as const) : ('succeeded' as const) }));
    const afterD1 = expandDecision(t, running, 'd1', ['a']);
    expect(names(afterD1)).toEqual(['a']);
    // d2 completes and chooses nothing: join converges on a alone.
    const settled = [
      { name: 'd1', template_step: 'd1', state: 'complete' as const },
      { name: 'd2', template_step: 'd2', state: 'succeeded' as const },
      { name: 'a', template_step: 'a', state: 'pending' as const },
    ];
    expect(parents(expandDecision(t, settled, 'd2', []))).toEqual({ join: ['a'] });
    // If d2 had completed first (state given), d1's expansion joins at once.
    const d2Done = init.map((e) => ({ ...e, state: e.name === 'd2' ? ('complete' as const) : ('succeeded' as const) }));
    expect(parents(expandDecision(t, d2Done, 'd1', ['a']))).toEqual({ a: ['d1'], join: ['a'] });
  });

  it('creates a batchable branch but leaves its workers and their aggregator to the batch outcome', () => {
    const t = template('decide_then_batch', [
      step('choose', 'decision', []),
      ...csv.steps.map((s) => (s.name === 'analyze_csv' ? { ...s, depends_on: ['choose'] } : s)),
    ]);
    const ps = expandDecision(t, [{ name: 'choose', template_step: 'choose' }], 'choose', ['analyze_csv']);
    expect(parents(ps)).toEqual({ analyze_csv: ['choose'] });
  });
});

describe('expandBatch', () => {
  const start = asExisting(initialSteps(csv));

  it('creates one worker per cursor, _001.._005, and an aggregator joining all five', () => {
    const cursors = [0, 200, 400, 600, 800].map((offset) => ({ offset }));
    const ps = expandBatch(csv, start, 'analyze_csv', cursors);
    const workers = ['process_csv_batch_001', 'process_csv_batch_002', 'process_csv_batch_003', 'process_csv_batch_004', 'process_csv_batch_005'];
    expect(names(ps)).toEqual([...workers, 'aggregate_results', 'publish_report']);
    ps.slice(0, 5).forEach((w, i) => {
      expect(w.template_step).toBe('process_csv_batch');
      expect(w.type).toBe('batch_worker');
      expect(w.parents).toEqual(['analyze_csv']);
      expect(w.inputs).toEqual({ delimiter: ',' });
      expect(w.batch).toEqual({ cursor: { offset: i * 200 }, index: i + 1, total: 5, no_op: false });
    });
    expect(parents(ps).aggregate_results).toEqual(workers);
    expect(parents(ps).publish_report).toEqual(['aggregate_results']);
    expect(ps[5]!.batch).toBeNull();
  });

  it('creates one no-op placeholder _000 when there is nothing to batch, so the graph converges', () => {
    const ps = expandBatch(csv, start, 'analyze_csv', []);
    expect(names(ps)).toEqual(['process_csv_batch_000', 'aggregate_results', 'publish_report']);
    expect(ps[0]!.batch).toEqual({ cursor: null, index: 0, total: 0, no_op: true });
    expect(ps[0]!.parents).toEqual(['analyze_csv']);
    expect(parents(ps).aggregate_results).toEqual(['process_csv_batch_000']);
  });

  it('refuses more cursors than max_workers, telling the handler author what to return', () => {
    const call = () => expandBatch(csv, start, 'analyze_csv', [1, 2, 3, 4, 5, 6]);
    expect(call).toThrow(BatchError);
    expect(call).toThrow('batchable step "analyze_csv" returned 6 cursors, but batch.max_workers is 5; return at most 5 cursors');
  });

  it('is idempotent', () => {
    const first = expandBatch(csv, start, 'analyze_csv', ['a', 'b']);
    expect(expandBatch(csv, [...start, ...asExisting(first)], 'analyze_csv', ['a', 'b'])).toEqual([]);
  });

  it('gives a standard aggregator the workers plus its other declared deps that exist', () => {
    const t = template('std_agg', [
      step('prepare', 'standard', []),
      ...csv.steps.filter((s) => s.name !== 'aggregate_results' && s.name !== 'publish_report'),
      step('aggregate_results', 'standard', ['process_csv_batch', 'prepare']),
    ]);
    const ps = expandBatch(t, asExisting(initialSteps(t)), 'analyze_csv', ['x']);
    expect(parents(ps)).toEqual({
      process_csv_batch_001: ['analyze_csv'],
      aggregate_results: ['process_csv_batch_001', 'prepare'],
    });
  });

  it('refuses a worker instance name that another template step already has', () => {
    const t = template('clash', [...csv.steps, step('process_csv_batch_002', 'standard', [])]);
    const call = () => expandBatch(t, asExisting(initialSteps(t)), 'analyze_csv', [1, 2]);
    expect(call).toThrow(BatchError);
    expect(call).toThrow('batch worker instance name "process_csv_batch_002" is already the name of another step of template test/clash@1.0.0');
  });

  it('names workers with three digits, and more past 999', () => {
    expect(workerName('w', 1)).toBe('w_001');
    expect(workerName('w', 42)).toBe('w_042');
    expect(workerName('w', 1000)).toBe('w_1000');
  });

  it('refuses a step that is not batchable, or whose worker template is not a batch_worker', () => {
    expect(() => expandBatch(csv, start, 'publish_report', [])).toThrow(
      'step "publish_report" of template test/csv@1.0.0 is a standard step, not a batchable step',
    );
    const broken = template('broken', [
      step('analyze_csv', 'batchable', [], { batch: { worker_template: 'publish_report', batch_size: 1, max_workers: 2 } }),
      step('publish_report', 'standard', ['analyze_csv']),
    ]);
    const call = () => expandBatch(broken, start, 'analyze_csv', []);
    expect(call).toThrow(BatchError);
    expect(call).toThrow('names worker template "publish_report", which is a standard step, not a batch_worker step');
    expect(() => expandBatch(csv, [], 'analyze_csv', [])).toThrow('batchable step "analyze_csv" has no instance in this task');
  });
});
