/**
 * Pure graph helpers over step definitions. An edge runs from a dependency
 * to the step that depends on it (`b.depends_on: [a]` is the edge a → b), so
 * a topological order is an order in which the steps may run.
 *
 * Dependencies that name no step of the list are ignored here; validation
 * reports them separately.
 */

export interface GraphStep {
  name: string;
  depends_on: readonly string[];
}

/**
 * One dependency cycle, in run order and closed, e.g. `['a', 'b', 'c', 'a']`
 * meaning b depends on a, c on b and a on c; `null` when the steps form a DAG.
 * A step that depends on itself is the cycle `['a', 'a']`.
 *
 * @example
 *   findCycle([{ name: 'a', depends_on: ['b'] }, { name: 'b', depends_on: ['a'] }]) // ['a', 'b', 'a']
 */
export function findCycle(steps: readonly GraphStep[]): string[] | null {
  const byName = indexByName(steps);
  const WHITE = 0;
  const GREY = 1;
  const BLACK = 2;
  const colour = new Map<string, number>();
  for (const s of steps) colour.set(s.name, WHITE);

  // Iterative DFS along depends_on; `stack` is the current path.
  for (const start of steps) {
    if (colour.get(start.name) !== WHITE) continue;
    const stack: { name: string; next: number }[] = [{ name: start.name, next: 0 }];
    colour.set(start.name, GREY);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const deps = byName.get(top.name)!.depends_on;
      if (top.next >= deps.length) {
        colour.set(top.name, BLACK);
        stack.pop();
        continue;
      }
      const dep = deps[top.next++]!;
      if (!byName.has(dep)) continue;
      const c = colour.get(dep);
      if (c === GREY) {
        // The path from `dep` to `top` plus the edge back: follows depends_on,
        // so reverse it to read in run order.
        const i = stack.findIndex((f) => f.name === dep);
        const cycle = stack.slice(i).map((f) => f.name);
        cycle.push(dep);
        return cycle.reverse();
      }
      if (c === WHITE) {
        colour.set(dep, GREY);
        stack.push({ name: dep, next: 0 });
      }
    }
  }
  return null;
}

/**
 * The steps in an order where every step comes after all its dependencies;
 * among steps that are free at the same time, declaration order is kept.
 * Throws when the steps contain a cycle (check with `findCycle` first).
 *
 * @example
 *   topologicalOrder(template.steps).map((s) => s.name)
 */
export function topologicalOrder<T extends GraphStep>(steps: readonly T[]): T[] {
  const byName = indexByName(steps);
  const indegree = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const s of steps) {
    indegree.set(s.name, 0);
    dependents.set(s.name, []);
  }
  for (const s of steps) {
    for (const d of new Set(s.depends_on)) {
      if (!byName.has(d)) continue;
      indegree.set(s.name, indegree.get(s.name)! + 1);
      dependents.get(d)!.push(s.name);
    }
  }
  const position = new Map(steps.map((s, i) => [s.name, i]));
  const ready = steps.filter((s) => indegree.get(s.name) === 0).map((s) => s.name);
  const order: T[] = [];
  while (ready.length > 0) {
    // Smallest declaration index first keeps the order stable and readable.
    ready.sort((a, b) => position.get(a)! - position.get(b)!);
    const name = ready.shift()!;
    order.push(byName.get(name)!);
    for (const n of dependents.get(name)!) {
      const left = indegree.get(n)! - 1;
      indegree.set(n, left);
      if (left === 0) ready.push(n);
    }
  }
  if (order.length !== byName.size) {
    const cycle = findCycle(steps);
    throw new Error(`steps contain a dependency cycle${cycle ? `: ${cycle.join(' → ')}` : ''}; no topological order exists`);
  }
  return order;
}

/** Names of the steps that list `name` in their depends_on. */
export function dependentsOf(steps: readonly GraphStep[], name: string): string[] {
  return steps.filter((s) => s.depends_on.includes(name)).map((s) => s.name);
}

function indexByName<T extends GraphStep>(steps: readonly T[]): Map<string, T> {
  const m = new Map<string, T>();
  // With duplicate names the first wins; validation reports duplicates.
  for (const s of steps) if (!m.has(s.name)) m.set(s.name, s);
  return m;
}
