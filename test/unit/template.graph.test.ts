import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dependentsOf, findCycle, topologicalOrder, type GraphStep } from '../../src/core/template/graph.js';

const s = (name: string, ...depends_on: string[]): GraphStep => ({ name, depends_on });

/** Each edge of the closed cycle [a, b, …, a] must be a real dependency: b depends on a. */
function assertRealCycle(steps: GraphStep[], cycle: string[]): void {
  expect(cycle.length).toBeGreaterThanOrEqual(2);
  expect(cycle[0]).toBe(cycle[cycle.length - 1]);
  expect(new Set(cycle.slice(1)).size).toBe(cycle.length - 1);
  for (let i = 1; i < cycle.length; i++) {
    const step = steps.find((x) => x.name === cycle[i])!;
    expect(step.depends_on).toContain(cycle[i - 1]);
  }
}

describe('findCycle', () => {
  it('returns null for a DAG and for an empty list', () => {
    expect(findCycle([])).toBeNull();
    expect(findCycle([s('a'), s('b', 'a'), s('c', 'a', 'b')])).toBeNull();
  });

  it('finds a cycle in run order', () => {
    expect(findCycle([s('a', 'c'), s('b', 'a'), s('c', 'b')])).toEqual(['a', 'b', 'c', 'a']);
  });

  it('finds a self-dependency', () => {
    expect(findCycle([s('a'), s('b', 'b')])).toEqual(['b', 'b']);
  });

  it('ignores dependencies on steps that do not exist', () => {
    expect(findCycle([s('a', 'ghost'), s('b', 'a')])).toBeNull();
  });

  it('finds a cycle reachable only past an acyclic prefix', () => {
    const steps = [s('root'), s('x', 'root', 'z'), s('y', 'x'), s('z', 'y')];
    const cycle = findCycle(steps)!;
    assertRealCycle(steps, cycle);
    expect(new Set(cycle)).toEqual(new Set(['x', 'y', 'z']));
  });
});

describe('topologicalOrder', () => {
  it('keeps declaration order among steps free at the same time', () => {
    const order = topologicalOrder([s('end', 'b', 'c'), s('c', 'start'), s('b', 'start'), s('start')]);
    expect(order.map((x) => x.name)).toEqual(['start', 'c', 'b', 'end']);
  });

  it('returns the step objects themselves', () => {
    const steps = [{ name: 'a', depends_on: [], extra: 1 }];
    expect(topologicalOrder(steps)[0]).toBe(steps[0]);
  });

  it('throws on a cycle, printing it', () => {
    expect(() => topologicalOrder([s('a', 'b'), s('b', 'a')])).toThrow('steps contain a dependency cycle: a → b → a; no topological order exists');
  });
});

describe('dependentsOf', () => {
  it('lists the steps that depend on a step', () => {
    expect(dependentsOf([s('a'), s('b', 'a'), s('c', 'b'), s('d', 'a')], 'a')).toEqual(['b', 'd']);
  });
});

/** A random DAG: step i may depend only on steps < i; then the list is shuffled. */
const randomDag = fc
  .integer({ min: 1, max: 30 })
  .chain((n) =>
    fc.tuple(
      fc.constant(n),
      fc.array(fc.array(fc.integer({ min: 0, max: 1_000 }), { maxLength: 4 }), { minLength: n, maxLength: n }),
      fc.array(fc.integer(), { minLength: n, maxLength: n }),
    ),
  )
  .map(([n, picks, shuffleKeys]) => {
    const steps: GraphStep[] = [];
    for (let i = 0; i < n; i++) {
      const deps = i === 0 ? [] : [...new Set(picks[i]!.map((p) => `s${p % i}`))];
      steps.push(s(`s${i}`, ...deps));
    }
    return steps
      .map((step, i) => ({ step, k: shuffleKeys[i]! }))
      .sort((a, b) => a.k - b.k)
      .map((x) => x.step);
  });

describe('graph helpers on random DAGs', () => {
  it('topologicalOrder places every step after all its dependencies', () => {
    fc.assert(
      fc.property(randomDag, (steps) => {
        expect(findCycle(steps)).toBeNull();
        const order = topologicalOrder(steps);
        expect(order).toHaveLength(steps.length);
        const at = new Map(order.map((x, i) => [x.name, i]));
        for (const step of steps) for (const d of step.depends_on) expect(at.get(d)!).toBeLessThan(at.get(step.name)!);
      }),
      { numRuns: 300 },
    );
  });

  it('adding a back edge makes findCycle return a real cycle', () => {
    fc.assert(
      fc.property(
        randomDag.filter((steps) => steps.some((x) => x.depends_on.length > 0)),
        fc.nat(),
        fc.nat(),
        (steps, pickStep, pickDep) => {
          // Pick an edge dep → step and add a path back: dep depends on step.
          const withDeps = steps.filter((x) => x.depends_on.length > 0);
          const step = withDeps[pickStep % withDeps.length]!;
          const dep = step.depends_on[pickDep % step.depends_on.length];
          const mutated = steps.map((x) => (x.name === dep ? s(x.name, ...x.depends_on, step.name) : x));
          const cycle = findCycle(mutated);
          expect(cycle).not.toBeNull();
          assertRealCycle(mutated, cycle!);
          expect(() => topologicalOrder(mutated)).toThrow(/dependency cycle/);
        },
      ),
      { numRuns: 300 },
    );
  });
});
