import { describe, expect, it } from 'vitest';
import { canonicalJson, contextFor, expectedCsvAggregate, SCENARIOS, selectScenarios, verifyOutcome, type ScenarioDef } from '../../src/benchmark/scenarios.js';
import { generateProductsCsv } from '../../src/examples/products.js';

const byId = (id: string) => SCENARIOS.find((s) => s.id === id)!;
const done = (results: Record<string, unknown>) => ({
  state: 'complete',
  steps: Object.entries(results).map(([name, result]) => ({ name, state: 'complete', result })),
});
const LINEAR = { linear_step_1: 36, linear_step_2: 1296, linear_step_3: 1679616, linear_step_4: 2821109907456 };

describe('verifyOutcome', () => {
  it('accepts the right linear results, as numbers or as strings', () => {
    expect(verifyOutcome(byId('linear'), done(LINEAR))).toBeUndefined();
    expect(verifyOutcome(byId('python_linear'), done({ ...LINEAR, linear_step_4: '2821109907456' }))).toBeUndefined();
  });

  it('rejects a wrong value, naming the step, what it got and what it expected', () => {
    expect(verifyOutcome(byId('linear'), done({ ...LINEAR, linear_step_4: 2821109907457 }))).toBe(
      'step linear_step_4 returned 2821109907457, expected 2821109907456',
    );
  });

  it('rejects a missing step and a task that did not complete', () => {
    const { linear_step_3: _, ...rest } = LINEAR;
    expect(verifyOutcome(byId('linear'), done(rest))).toBe('step linear_step_3 is missing');
    expect(verifyOutcome(byId('linear'), { ...done(LINEAR), state: 'error' })).toBe('task ended in state error, expected complete');
  });

  it('conditional 500 must route to auto_approve only (jsonb key order does not matter)', () => {
    const s = byId('conditional');
    const base = { validate_request: {}, routing_decision: {}, auto_approve: {} };
    expect(verifyOutcome(s, done({ ...base, finalize_approval: { approvals: ['auto_approve'], approved: true } }))).toBeUndefined();
    expect(verifyOutcome(s, done({ ...base, finalize_approval: { approved: false, approvals: ['auto_approve'] } }))).toMatch(/^finalize_approval returned/);
    expect(verifyOutcome(s, done({ validate_request: {}, routing_decision: {}, manager_approval: {}, finalize_approval: {} }))).toMatch(
      /^conditional created steps/,
    );
  });

  it('tree: 6^64 exactly', () => {
    const steps = Object.fromEntries(['tree_root', 'a', 'b', 'c', 'd', 'e', 'f'].map((n) => [n, 1]));
    expect(verifyOutcome(byId('tree'), done({ ...steps, tree_final_convergence: (6n ** 64n).toString() }))).toBeUndefined();
    expect(verifyOutcome(byId('tree'), done({ ...steps, tree_final_convergence: 6 ** 64 }))).toMatch(/expected 6334/);
  });

  it('csv: the aggregate must equal a direct computation over the file', () => {
    const csv = generateProductsCsv(1000);
    const want = expectedCsvAggregate(csv);
    expect(want.processed_count).toBe(1000);
    const workers = Object.fromEntries(['001', '002', '003', '004', '005'].map((b) => [`process_csv_batch_${b}`, {}]));
    const ok = done({ analyze_csv: {}, ...workers, aggregate_csv_results: { ...want, average_rating: 3.9 } });
    expect(verifyOutcome(byId('csv'), ok, want)).toBeUndefined();
    const bad = done({ analyze_csv: {}, ...workers, aggregate_csv_results: { ...want, processed_count: 800 } });
    expect(verifyOutcome(byId('csv'), bad, want)).toBe('aggregate_csv_results.processed_count is 800, expected 1000');
  });
});

describe('selectScenarios', () => {
  it('all by default, with throughput', () => {
    const all = selectScenarios(undefined);
    expect(all.scenarios).toHaveLength(SCENARIOS.length);
    expect(all.throughput).toBe(true);
  });
  it('ids and tiers, in report order; throughput only when named', () => {
    const r = selectScenarios(['tier4', 'linear']);
    expect(r.scenarios.map((s: ScenarioDef) => s.id)).toEqual([
      'linear',
      'python_linear',
      'python_diamond',
      'ruby_linear',
      'ruby_diamond',
      'typescript_linear',
      'typescript_diamond',
    ]);
    expect(r.throughput).toBe(false);
  });
  it('an unknown name is an error that lists the known ones', () => {
    expect(() => selectScenarios(['linaer'])).toThrow(/"linaer", which is not a scenario; use any of single_step, linear, diamond/);
  });
});

describe('contexts', () => {
  it('conditional sends amount 500; concurrent tasks carry their instance', () => {
    expect(contextFor(byId('conditional'))).toEqual({ amount: 500, requester: 'benchmark', purpose: 'benchmark_test' });
    expect(contextFor(byId('concurrent_2x'), { instance: 1 })).toEqual({ even_number: 6, _instance: 1 });
    expect(() => contextFor(byId('csv'))).toThrow(/products CSV/);
  });
  it('canonicalJson ignores key order', () => {
    expect(canonicalJson({ b: 1, a: { d: 2, c: 3 } })).toBe(canonicalJson({ a: { c: 3, d: 2 }, b: 1 }));
  });
});
