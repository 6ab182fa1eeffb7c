/**
 * Values PostgreSQL or JSON readers trip over, returned by real handlers in
 * every runtime through a real worker (issue 9): a NUL character or a lone
 * surrogate fails the step for good with an error naming the JSON path
 * (instead of a write retried forever), and integers past 2^53 from Python
 * and Ruby stay exact from one step to the next and in the stored result.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Engine } from '../support/engine.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { createRunner } from '../../src/worker/runners.js';
import type { StepRunner } from '../../src/worker/runner.js';
import { getTaskViewJson } from '../../src/store/tasks.js';
import { silentLogger } from '../../src/shared/logger.js';
import { packageRoot } from '../../src/shared/paths.js';

const FIXTURES = join(packageRoot(), 'test/integration/fixtures/value-handlers');
const template = (name: string, steps: string) => parseTemplate(`namespace: t_values\nname: ${name}\nversion: 1.0.0\nsteps:\n${steps}`, `${name}.yaml`);
const RUNTIMES = ['native', 'python', 'ruby'] as const;
const templates = [
  ...RUNTIMES.map((r) => template(`bad_${r}`, `  - { name: bad, handler: values.bad, runtime: ${r} }`)),
  template(
    'big',
    '  - { name: make, handler: values.big, runtime: python }\n' +
      '  - { name: ruby_adds, handler: values.add_one, runtime: ruby, depends_on: [make] }\n' +
      '  - { name: python_adds, handler: values.add_one, runtime: python, depends_on: [ruby_adds] }',
  ),
];

const handlers = {
  'values.bad': (step: { context: { kind: string } }) => (step.context.kind === 'nul' ? { text: 'before\u0000after' } : { nested: [1, { text: '\ud800' }] }),
};

describe('values a handler may return, in every runtime', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  const runners: StepRunner[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend: 'pg', url: tdb.url, templates, handlers: handlers as never, namespaces: ['t_values'] });
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

  it.each(
    RUNTIMES.flatMap(
      (r) =>
        [
          [r, 'nul'],
          [r, 'surrogate'],
        ] as const,
    ),
  )('%s: a result with a %s character fails the step for good, naming where it is', async (runtime, kind) => {
    const view = await engine.run('t_values', `bad_${runtime}`, { kind }, 30_000);
    expect(view.state).toBe('error');
    const step = view.steps[0]!;
    expect(step.attempts).toBe(1); // permanent: not retried
    const error = step.error as { class: string; message: string; permanent: boolean };
    expect(error.permanent).toBe(true);
    if (runtime === 'ruby' && kind === 'surrogate') {
      // Ruby cannot even write a lone surrogate as JSON: the SDK says so, and where.
      expect(error.message).toContain('returned a String that is not valid UTF-8 (a lone surrogate, or binary bytes) at value["nested"][1]["text"]');
      return;
    }
    const where = kind === 'nul' ? '$.text contains the character U+0000 (NUL)' : '$.nested[1].text contains a lone UTF-16 surrogate';
    expect(error.message).toContain(`the handler returned a value that cannot be stored: the string at ${where}`);
  });

  it('integers past 2^53 from Python and Ruby stay exact through the next steps and in the stored results', async () => {
    const orchestrator = engine.orchestrators[0]!;
    const { id } = await orchestrator.createTask({ namespace: 't_values', name: 'big' });
    expect(await orchestrator.waitForTask(id, 30_000)).toBe(true);
    const text = (await getTaskViewJson(engine.db, id))!;
    expect(JSON.parse(text).state).toBe('complete');
    // As the API sends it: the JSON text PostgreSQL renders, digits intact.
    expect(text).toContain('"result" : {"n": 18446744073709551617}');
    expect(text).toContain('"result" : {"n": 18446744073709551618}');
    expect(text).toContain('"result" : {"n": 18446744073709551619}');
  });
});
