/**
 * MAX_JSON_DEPTH (64) in every runtime, through a real worker: a context
 * nested exactly that deep reaches the handler intact and a parent's result
 * that deep reaches its child, and a result nested deeper fails the step for
 * good with an error naming the limit and the path (the worker checks every
 * result text; Ruby's SDK refuses it itself).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { jsonDepthProblem, MAX_JSON_DEPTH } from '../../src/core/json-depth.js';
import { createRunner } from '../../src/worker/runners.js';
import type { StepRunner } from '../../src/worker/runner.js';
import { silentLogger } from '../../src/shared/logger.js';
import { packageRoot } from '../../src/shared/paths.js';

const FIXTURES = join(packageRoot(), 'test/integration/fixtures/depth-handlers');
const RUNTIMES = ['native', 'python', 'ruby'] as const;
const template = (name: string, steps: string) => parseTemplate(`namespace: t_depth\nname: ${name}\nversion: 1.0.0\nsteps:\n${steps}`, `${name}.yaml`);
const templates = RUNTIMES.flatMap((r) => [
  template(
    `echo_${r}`,
    `  - { name: first, handler: depth.echo, runtime: ${r} }\n  - { name: second, handler: depth.parent, runtime: ${r}, depends_on: [first] }`,
  ),
  template(`nest_${r}`, `  - { name: nest, handler: depth.nest, runtime: ${r} }`),
]);

/** {"a": [{"a": [ ... 1 ... ]}]}, `depth` levels deep (the same shape the handlers build). */
function nest(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = (depth - i) % 2 ? { a: v } : [v];
  return v;
}

const handlers = {
  'depth.echo': (step: { context: unknown }) => step.context,
  'depth.parent': (step: { dependency_results: Record<string, unknown> }) => step.dependency_results.first,
  'depth.nest': (step: { context: { depth: number } }) => nest(step.context.depth),
};

describe(`JSON nested up to MAX_JSON_DEPTH (${MAX_JSON_DEPTH}), in every runtime`, () => {
  let tdb: TestDatabase;
  let engine: Engine;
  const runners: StepRunner[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend: 'pg', url: tdb.url, templates, handlers: handlers as never, namespaces: ['t_depth'] });
    for (const runtime of ['python', 'ruby']) {
      const runner = await createRunner(runtime, join(FIXTURES, runtime), silentLogger());
      runners.push(runner);
      await engine.addWorker({ runner });
    }
  });
  afterAll(async () => {
    await engine?.stop();
    for (const r of runners) await r.close();
    await tdb?.drop();
  });

  it.each(RUNTIMES)('%s: a context exactly the limit deep reaches the handler intact, and its result reaches the next step', async (runtime) => {
    const context = nest(MAX_JSON_DEPTH) as Record<string, unknown>;
    expect(jsonDepthProblem(context)).toBeUndefined();
    const view = await engine.run('t_depth', `echo_${runtime}`, context, 30_000);
    expect(view.state).toBe('complete');
    expect(view.steps.map((s) => s.result)).toEqual([context, context]);
  });

  it.each(
    RUNTIMES.flatMap(
      (r) =>
        [
          [r, MAX_JSON_DEPTH + 1],
          [r, 150],
        ] as const,
    ),
  )('%s: a result %i levels deep fails the step for good, naming the limit and the path', async (runtime, depth) => {
    const view = await engine.run('t_depth', `nest_${runtime}`, { depth }, 30_000);
    expect(view.state).toBe('error');
    const step = view.steps[0]!;
    expect(step.attempts).toBe(1); // permanent: not retried
    const path = '$' + '.a[0]'.repeat(MAX_JSON_DEPTH / 2);
    expect(step.error).toMatchObject({
      kind: 'invalid_return',
      permanent: true,
      message: `handler "depth.nest" returned a result that nests deeper than ${MAX_JSON_DEPTH} levels at ${path}; flatten it (weft keeps every JSON value within ${MAX_JSON_DEPTH} levels)`,
    });
  });
});
