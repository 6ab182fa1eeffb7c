/**
 * Randomised tests of the pure core: readiness and status driven by a
 * simulated executor over random DAGs, and planning over random templates
 * compared with a declarative oracle of what must exist at the end.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readySteps, type StepSnapshot } from '../../src/core/readiness.js';
import { executionStatus } from '../../src/core/status.js';
import { decideAfterFailure } from '../../src/core/retry.js';
import { expandBatch, expandDecision, initialSteps, topologicalOrder, type ExistingStep, type PlannedStep } from '../../src/core/plan.js';
import type { RetryPolicy, StepDefinition, StepType, TemplateDefinition } from '../../src/core/template/types.js';

type Gen = fc.GeneratorValue;

/** A random DAG: step i may only have parents among steps 0..i-1, so it is acyclic by construction. */
const dagArb = fc
  .integer({ min: 1, max: 25 })
  .chain((n) =>
    fc.tuple(
      ...Array.from({ length: n }, (_, i) => (i === 0 ? fc.constant<number[]>([]) : fc.uniqueArray(fc.integer({ min: 0, max: i - 1 }), { maxLength: 4 }))),
    ),
  );

function shuffle<T>(xs: T[], g: Gen): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = g(fc.integer, { min: 0, max: i });
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Names are shuffled against creation order so nothing can lean on `s0` coming first. */
function snapshots(dag: number[][], g: Gen): StepSnapshot[] {
  const label = shuffle(
    dag.map((_, i) => i),
    g,
  );
  const steps = dag.map((ps, i) => ({
    name: `s${label[i]}`,
    state: 'pending' as const,
    run_after: null,
    parents: ps.map((p) => `s${label[p]}`),
  }));
  return shuffle(steps, g);
}

function expectTopological(steps: StepSnapshot[], order: string[]): void {
  expect([...order].sort()).toEqual(steps.map((s) => s.name).sort()); // each step exactly once
  const position = new Map(order.map((n, i) => [n, i]));
  for (const s of steps) for (const p of s.parents) expect(position.get(p)!).toBeLessThan(position.get(s.name)!);
}

describe('random DAGs through readiness and status', () => {
  it('never offers a step with an incomplete parent, finishes in topological order, and is all_complete only at the end', () => {
    fc.assert(
      fc.property(dagArb, fc.gen(), (dag, g) => {
        const steps = snapshots(dag, g);
        const byName = new Map(steps.map((s) => [s.name, s]));
        const order: string[] = [];
        for (let round = 0; ; round++) {
          expect(round).toBeLessThanOrEqual(steps.length); // every round completes at least one step
          const done = steps.every((s) => s.state === 'complete');
          const status = executionStatus(steps, 0);
          expect(status === 'all_complete').toBe(done);
          if (done) break;
          expect(status).toBe('has_ready_steps');
          const ready = readySteps(steps, 0);
          for (const name of ready) {
            const s = byName.get(name)!;
            expect(s.state).toBe('pending');
            for (const p of s.parents) expect(byName.get(p)!.state).toBe('complete');
          }
          // Run a random non-empty part of the ready set, in random order.
          const run = shuffle(ready, g).slice(0, g(fc.integer, { min: 1, max: ready.length }));
          for (const name of run) {
            byName.get(name)!.state = 'complete';
            order.push(name);
          }
        }
        expectTopological(steps, order);
      }),
      { numRuns: 300 },
    );
  });

  it('still completes every DAG when steps fail, as long as max_attempts ≥ failures + 1', () => {
    fc.assert(
      fc.property(dagArb, fc.gen(), (dag, g) => {
        const steps = snapshots(dag, g);
        // Each step fails a random number of times its budget allows: at most max_attempts - 1.
        const failuresOf = new Map<string, number>();
        const policies = new Map<string, RetryPolicy>();
        const attempts = new Map<string, number>();
        for (const s of steps) {
          const maxAttempts = g(fc.integer, { min: 1, max: 5 });
          attempts.set(s.name, 0);
          failuresOf.set(s.name, g(fc.integer, { min: 0, max: maxAttempts - 1 }));
          policies.set(s.name, {
            max_attempts: maxAttempts,
            backoff: g(fc.constantFrom, 'exponential' as const, 'linear' as const, 'fixed' as const),
            base_ms: g(fc.integer, { min: 0, max: 1000 }),
            max_ms: g(fc.integer, { min: 0, max: 5000 }),
          });
        }
        const byName = new Map(steps.map((s) => [s.name, s]));
        const random = () => g(fc.double, { min: 0, max: 1, noNaN: true });
        const order: string[] = [];
        let now = 1_000_000;
        for (let round = 0; ; round++) {
          expect(round).toBeLessThan(50 * steps.length);
          const status = executionStatus(steps, now);
          const running = steps.filter((s) => s.state === 'running');
          expect(status).not.toBe('blocked_by_failures');
          if (status === 'all_complete') {
            expect(steps.every((s) => s.state === 'complete')).toBe(true);
            break;
          }
          const ready = readySteps(steps, now);
          expect(status === 'has_ready_steps').toBe(ready.length > 0);
          if (status === 'waiting') {
            // Nothing to do until the earliest backoff elapses: jump the clock there.
            expect(running).toEqual([]);
            const next = Math.min(...steps.filter((s) => s.state === 'waiting_retry').map((s) => s.run_after!));
            expect(next).toBeGreaterThan(now);
            now = next;
            continue;
          }
          if (status === 'processing') expect(running.length).toBeGreaterThan(0);
          const dispatch = ready.length > 0 && (running.length === 0 || g(fc.boolean));
          if (dispatch) {
            for (const name of shuffle(ready, g).slice(0, g(fc.integer, { min: 1, max: ready.length }))) {
              const s = byName.get(name)!;
              for (const p of s.parents) expect(byName.get(p)!.state).toBe('complete');
              s.state = 'running';
              attempts.set(s.name, attempts.get(s.name)! + 1);
            }
          } else {
            for (const s of shuffle(running, g).slice(0, g(fc.integer, { min: 1, max: running.length }))) {
              if (attempts.get(s.name)! <= failuresOf.get(s.name)!) {
                const d = decideAfterFailure(policies.get(s.name)!, attempts.get(s.name)!, false, random);
                expect(d.action).toBe('retry');
                if (d.action !== 'retry') return;
                expect(d.delayMs).toBeGreaterThanOrEqual(0);
                expect(d.delayMs).toBeLessThanOrEqual(policies.get(s.name)!.max_ms);
                s.state = 'waiting_retry';
                s.run_after = now + d.delayMs;
              } else {
                s.state = 'complete';
                order.push(s.name);
              }
            }
          }
          now += g(fc.integer, { min: 0, max: 50 });
        }
        expectTopological(steps, order);
        for (const s of steps) expect(attempts.get(s.name)).toBe(failuresOf.get(s.name)! + 1);
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------
// Planning over random templates.

function def(name: string, type: StepType, depends_on: string[], extra: Partial<StepDefinition> = {}): StepDefinition {
  return {
    name,
    handler: `h.${name}`,
    runtime: 'native',
    type,
    depends_on,
    inputs: {},
    retry: { max_attempts: 1, backoff: 'fixed', base_ms: 0, max_ms: 0 },
    timeout_ms: 1000,
    ...extra,
  };
}

/**
 * A random template in the shapes the format intends: a decision's branches
 * depend on that decision alone; a batch worker depends on its batchable step
 * alone; any other step depends on earlier non-decision steps (a
 * deferred_convergence step on at least one).
 */
function randomTemplate(g: Gen): TemplateDefinition {
  const steps: StepDefinition[] = [];
  const n = g(fc.integer, { min: 1, max: 14 });
  for (let i = 0; i < n; i++) {
    const name = `t${i}`;
    const decisions = steps.filter((s) => s.type === 'decision');
    const joinable = steps.filter((s) => s.type !== 'decision').map((s) => s.name);
    const kind = g(fc.constantFrom, 'standard', 'decision', 'branch', 'join', 'batch') as string;
    const pick = (min: number) => (joinable.length >= min ? shuffle(joinable, g).slice(0, g(fc.integer, { min, max: Math.min(3, joinable.length) })) : null);
    if (kind === 'branch' && decisions.length > 0) {
      steps.push(def(name, 'standard', [g(fc.constantFrom, ...decisions).name]));
    } else if (kind === 'join' && pick(1)) {
      steps.push(def(name, 'deferred_convergence', pick(1)!));
    } else if (kind === 'batch') {
      const max_workers = g(fc.integer, { min: 1, max: 4 });
      steps.push(def(name, 'batchable', pick(0)!, { batch: { worker_template: `${name}_w`, batch_size: 10, max_workers } }));
      steps.push(def(`${name}_w`, 'batch_worker', [name]));
    } else {
      steps.push(def(name, kind === 'decision' ? 'decision' : 'standard', pick(0)!));
    }
  }
  return { namespace: 'random', name: 'dag', version: '1.0.0', runtime: 'native', steps };
}

describe('random templates through planning', () => {
  it('expands in any valid order to exactly the declarative result: branches as chosen, joins over what was created', () => {
    fc.assert(
      fc.property(fc.gen(), (g) => {
        const t = randomTemplate(g);
        const byName = new Map(t.steps.map((s) => [s.name, s]));
        const created: PlannedStep[] = [];
        const add = (ps: PlannedStep[]) => {
          for (const p of ps) {
            expect(created.some((c) => c.name === p.name)).toBe(false); // never re-created
            for (const parent of p.parents) expect(created.some((c) => c.name === parent)).toBe(true); // parents exist first
            created.push(p);
          }
        };
        add(initialSteps(t));
        const resolved = new Set<string>();
        const choices = new Map<string, string[]>();
        const cursorCounts = new Map<string, number>();
        const existing = (): ExistingStep[] =>
          created.map((c) => ({
            name: c.name,
            template_step: c.template_step,
            ...(c.type === 'decision' || c.type === 'batchable' ? { state: resolved.has(c.name) ? ('complete' as const) : ('pending' as const) } : {}),
          }));
        const ancestors = (name: string): Set<string> => {
          const seen = new Set<string>();
          const walk = (n: string) => {
            for (const p of created.find((c) => c.name === n)!.parents) if (!seen.has(p)) (seen.add(p), walk(p));
          };
          walk(name);
          return seen;
        };
        for (;;) {
          // A gate completes only after all its ancestors completed, and ancestor gates expand when they complete.
          const eligible = created.filter(
            (c) =>
              (c.type === 'decision' || c.type === 'batchable') &&
              !resolved.has(c.name) &&
              [...ancestors(c.name)].every((a) => !['decision', 'batchable'].includes(byName.get(a)?.type ?? '') || resolved.has(a)),
          );
          if (eligible.length === 0) break;
          const gate = g(fc.constantFrom, ...eligible);
          const before = existing();
          let out: PlannedStep[];
          if (gate.type === 'decision') {
            const children = t.steps.filter((s) => s.depends_on.includes(gate.name)).map((s) => s.name);
            const chosen = children.filter(() => g(fc.boolean));
            choices.set(gate.name, chosen);
            out = expandDecision(t, before, gate.name, chosen);
            resolved.add(gate.name);
            add(out);
            expect(expandDecision(t, existing(), gate.name, chosen)).toEqual([]); // idempotent
          } else {
            const cursors = Array.from({ length: g(fc.integer, { min: 0, max: byName.get(gate.name)!.batch!.max_workers }) }, (_, i) => i);
            cursorCounts.set(gate.name, cursors.length);
            out = expandBatch(t, before, gate.name, cursors);
            resolved.add(gate.name);
            add(out);
            expect(expandBatch(t, existing(), gate.name, cursors)).toEqual([]);
          }
        }

        // The oracle: what must exist once every gate has resolved, read straight off the template.
        const inst = new Map<string, string[]>();
        const expectedParents = new Map<string, string[]>();
        for (const s of topologicalOrder(t)) {
          const have = s.depends_on.filter((d) => inst.has(d));
          const parentsNow = have.flatMap((d) => inst.get(d)!);
          const decisionParent = s.depends_on.find((d) => byName.get(d)!.type === 'decision');
          if (s.type === 'batch_worker') {
            const owner = s.depends_on[0]!;
            if (!inst.has(owner)) continue;
            const n = cursorCounts.get(owner)!;
            const names = n === 0 ? [`${s.name}_000`] : Array.from({ length: n }, (_, i) => `${s.name}_${String(i + 1).padStart(3, '0')}`);
            inst.set(s.name, names);
            for (const w of names) expectedParents.set(w, [owner]);
            continue;
          }
          let exists: boolean;
          if (decisionParent) exists = inst.has(decisionParent) && (choices.get(decisionParent) ?? []).includes(s.name);
          else if (s.type === 'deferred_convergence') exists = have.length > 0;
          else exists = have.length === s.depends_on.length;
          if (!exists) continue;
          inst.set(s.name, [s.name]);
          expectedParents.set(s.name, parentsNow);
        }
        const actual = new Map(created.map((c) => [c.name, [...c.parents].sort()]));
        const expected = new Map([...expectedParents].map(([k, v]) => [k, [...v].sort()]));
        expect(Object.fromEntries([...actual].sort())).toEqual(Object.fromEntries([...expected].sort()));
      }),
      { numRuns: 500 },
    );
  });
});
