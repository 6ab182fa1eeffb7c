/**
 * The shipped CSV examples (templates/csv_batch.yaml and its Python and Ruby
 * variants, issue 15) read only the examples data folder, in every runtime,
 * through real workers: a path that could reach another file fails the task
 * for good with the same clear error in TypeScript, Python and Ruby, and
 * nothing of that file is stored; a context that passes the template's own
 * input_schema succeeds with the same results in all three, which honour the
 * template's `inputs`.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { results, startEngine, type Engine } from '../support/engine.js';
import { claimedStep } from '../support/steps.js';
import { generateProductsCsv } from '../../src/examples/products.js';
import { expectedCsvAggregate } from '../../src/benchmark/scenarios.js';
import { loadTemplateFile } from '../../src/core/template/load.js';
import { compileInputSchema } from '../../src/core/template/input-schema.js';
import type { TemplateDefinition } from '../../src/core/template/types.js';
import { createRunner } from '../../src/worker/runners.js';
import { NativeRunner } from '../../src/worker/native-runner.js';
import type { StepErrorRecord, StepRunner } from '../../src/worker/runner.js';
import type { TaskView } from '../../src/store/tasks.js';
import { silentLogger } from '../../src/shared/logger.js';
import { packageRoot } from '../../src/shared/paths.js';

const RUNTIMES = [
  ['native', 'templates/csv_batch.yaml'],
  ['python', 'templates/languages/python/csv_batch.yaml'],
  ['ruby', 'templates/languages/ruby/csv_batch.yaml'],
] as const;
type Runtime = (typeof RUNTIMES)[number][0];
const NAME = 'csv_product_inventory_analyzer';
const SECRET = 'API_KEY=hunter2-from-a-dotenv-file';

/** The shipped template of each runtime, as the orchestrator registers it. */
const shipped = Object.fromEntries(
  await Promise.all(RUNTIMES.map(async ([rt, file]) => [rt, await loadTemplateFile(join(packageRoot(), file))] as const)),
) as Record<Runtime, TemplateDefinition>;

/** The same template with other `inputs` for analyze_csv (batch_size 300, at most 2 workers). */
const withInputs = (rt: Runtime): TemplateDefinition => {
  const t = structuredClone(shipped[rt]);
  t.name = 'csv_inputs_probe';
  t.steps[0]!.inputs = { batch_size: 300, max_workers: 2 };
  return t;
};

describe('the CSV examples read only the examples data folder, with the same results and errors in every runtime', () => {
  let tdb: TestDatabase;
  let engine: Engine;
  let base: string;
  let data: string;
  const runners = {} as Record<Runtime, StepRunner>;
  const savedDataDir = process.env.WEFT_EXAMPLES_DATA_DIR;
  const passwd = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .filter((l) => l.trim());

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'weft-csv-examples-'));
    data = join(base, 'data');
    mkdirSync(join(data, 'sub'), { recursive: true });
    writeFileSync(join(data, 'products.csv'), generateProductsCsv(1000));
    writeFileSync(join(data, 'sub', 'crlf.csv'), `\ufeff${generateProductsCsv(1000).replace(/\n/g, '\r\n')}`);
    writeFileSync(join(data, 'empty.csv'), generateProductsCsv(0));
    const lines = generateProductsCsv(3).split('\n');
    lines[2] = lines[2]!.replace(/,(\d+\.\d\d),/, (_m, price: string) => `,${price}5,`); // the second product's price gets a third decimal
    writeFileSync(join(data, 'bad-price.csv'), lines.join('\n'));
    writeFileSync(join(base, 'secret.env'), `${SECRET}\n`);
    symlinkSync('/etc/passwd', join(data, 'passwd.csv'));
    symlinkSync('/etc', join(data, 'etc'));
    symlinkSync(join(base, 'secret.env'), join(data, 'secret.csv'));
    symlinkSync('products.csv', join(data, 'alias.csv'));
    // Before the interpreters start: Python reads its environment once, at start.
    process.env.WEFT_EXAMPLES_DATA_DIR = data;

    tdb = await createTestDatabase();
    engine = await startEngine({
      backend: 'pg',
      url: tdb.url,
      templates: RUNTIMES.map(([rt]) => withInputs(rt)),
      namespaces: RUNTIMES.map(([rt]) => shipped[rt].namespace),
    });
    runners.native = new NativeRunner(engine.registry);
    for (const rt of ['python', 'ruby'] as const) {
      runners[rt] = await createRunner(rt, join(packageRoot(), 'handlers', rt), silentLogger());
      await engine.addWorker({ runner: runners[rt] });
    }
  });

  afterAll(async () => {
    await engine?.stop();
    for (const rt of ['python', 'ruby'] as const) await runners[rt]?.close();
    await tdb?.drop();
    rmSync(base, { recursive: true, force: true });
    if (savedDataDir === undefined) delete process.env.WEFT_EXAMPLES_DATA_DIR;
    else process.env.WEFT_EXAMPLES_DATA_DIR = savedDataDir;
  });

  const run = (rt: Runtime, context: Record<string, unknown>, name = NAME) => engine.run(shipped[rt].namespace, name, context, 60_000);

  /** Every row weft keeps of the task (task, steps, both transition logs), as text. */
  async function storedText(taskId: string): Promise<string> {
    const { rows } = await engine.db.query<{ t: string }>(
      `SELECT t::text AS t FROM weft.tasks t WHERE id = $1
       UNION ALL SELECT s::text FROM weft.steps s WHERE task_id = $1
       UNION ALL SELECT x::text FROM weft.task_transitions x WHERE task_id = $1
       UNION ALL SELECT x::text FROM weft.step_transitions x WHERE task_id = $1`,
      [taskId],
    );
    return rows.map((r) => r.t).join('\n');
  }

  const refusal = (found: string) =>
    `context.csv_file_path ${found}; name a CSV file inside the examples data folder ${data}, e.g. "products.csv" (WEFT_EXAMPLES_DATA_DIR sets the folder)`;

  function failedFor(view: TaskView): StepErrorRecord & { attempts: number } {
    expect(view.state).toBe('error');
    const step = view.steps.find((s) => s.name === 'analyze_csv')!;
    expect(step.state).toBe('error');
    return { ...(step.error as StepErrorRecord), attempts: step.attempts };
  }

  const OUTSIDE: Array<[string, string]> = [
    ['/etc/passwd', 'is an absolute path'],
    ['../../etc/passwd', 'has a ".." part'],
    ['sub/../../secret.env', 'has a ".." part'],
    ['{data}/products.csv', 'is an absolute path'],
    ['passwd.csv', 'leads out of the folder through a symbolic link'],
    ['etc/passwd', 'leads out of the folder through a symbolic link'],
    ['secret.csv', 'leads out of the folder through a symbolic link'],
  ];

  describe.each(RUNTIMES.map(([rt]) => rt))('%s', (rt) => {
    it.each(OUTSIDE)('refuses %j for good (%s), and stores nothing of the file it names', async (path, found) => {
      const context = { csv_file_path: path.replace('{data}', data) };
      expect(compileInputSchema(shipped[rt])(context)).toEqual({ ok: true }); // the schema lets it through: the handler must refuse it
      const view = await run(rt, context);
      const error = failedFor(view);
      expect(error.message).toBe(refusal(found));
      expect(error.permanent).toBe(true);
      expect(error.attempts).toBe(1);
      const stored = await storedText(view.id);
      expect(passwd.filter((line) => stored.includes(line))).toEqual([]);
      expect(stored).not.toContain('hunter2');
    });

    it.each([
      ['missing.csv', 'names no file in the folder'],
      ['products.csv/x', 'names no file in the folder'],
      ['sub', 'names a folder or a device, not a file'],
    ])('answers %j with a clear permanent error (%s)', async (path, found) => {
      const error = failedFor(await run(rt, { csv_file_path: path }));
      expect(error.message).toBe(refusal(found));
      expect(error.permanent).toBe(true);
    });

    it('names the line and column of a bad number, not its text', async () => {
      const error = failedFor(await run(rt, { csv_file_path: 'bad-price.csv' }));
      expect(error.message).toBe('CSV line 3: price must be a decimal such as 12.34 (at most 9 digits before the point and 2 after)');
      expect(error.permanent).toBe(true);
    });
  });

  it('refuses, in every runtime, what no stored context can hold or the schema would stop (NUL, not a string, missing)', async () => {
    const cases: Array<[unknown, string]> = [
      [{ csv_file_path: 'products.csv\u0000.txt' }, 'contains a NUL character'],
      [{ csv_file_path: 42 }, 'is not a string'],
      [{ csv_file_path: '' }, 'is empty'],
      [{}, 'is missing'],
    ];
    for (const [context, found] of cases) {
      for (const [rt] of RUNTIMES) {
        const outcome = await runners[rt].run(claimedStep({ handler: 'csv.analyze', name: 'analyze_csv', runtime: rt, context }));
        expect(outcome.ok, `${rt} ${JSON.stringify(context)}`).toBe(false);
        const error = (outcome as { error: StepErrorRecord }).error;
        expect(error.message, rt).toBe(refusal(found));
        expect(error.permanent, rt).toBe(true);
      }
    }
  });

  it('a context that passes the input_schema succeeds with the same results in all three, five batches of 200 rows', async () => {
    const expected = expectedCsvAggregate(generateProductsCsv(1000));
    const byRuntime: Record<string, Record<string, unknown>> = {};
    const storedResults: Record<string, string[]> = {};
    for (const [rt] of RUNTIMES) {
      const example = (shipped[rt].input_schema as { examples: Array<Record<string, unknown>> }).examples[0]!;
      expect(example).toEqual({ csv_file_path: 'products.csv' });
      expect(compileInputSchema(shipped[rt])(example)).toEqual({ ok: true });
      const view = await run(rt, example);
      expect(view.state, rt).toBe('complete');
      const workers = view.steps.filter((s) => s.template_step === 'process_csv_batch').map((s) => s.name);
      expect(workers.sort(), rt).toEqual(['001', '002', '003', '004', '005'].map((n) => `process_csv_batch_${n}`));
      const agg = view.steps.find((s) => s.name === 'aggregate_csv_results')!.result as Record<string, unknown>;
      expect(agg, rt).toMatchObject(expected);
      byRuntime[rt] = results(view);
      // As stored and served: the same JSON text, 349 and not 349.0.
      const { rows } = await engine.db.query<{ r: string }>(`SELECT result::text AS r FROM weft.steps WHERE task_id = $1 ORDER BY name`, [view.id]);
      storedResults[rt] = rows.map((r) => r.r);
    }
    expect(byRuntime.python).toEqual(byRuntime.native);
    expect(byRuntime.ruby).toEqual(byRuntime.native);
    expect(storedResults.python).toEqual(storedResults.native);
    expect(storedResults.ruby).toEqual(storedResults.native);
    expect((byRuntime.native!.aggregate_csv_results as { processed_count: number }).processed_count).toBe(1000);
  });

  it("honours the template's inputs in all three (batch_size 300, at most 2 workers)", async () => {
    const byRuntime: Record<string, Record<string, unknown>> = {};
    for (const [rt] of RUNTIMES) {
      const view = await run(rt, { csv_file_path: 'products.csv' }, 'csv_inputs_probe');
      expect(view.state, rt).toBe('complete');
      const workers = view.steps.filter((s) => s.template_step === 'process_csv_batch');
      expect(workers.map((s) => s.name).sort(), rt).toEqual(['process_csv_batch_001', 'process_csv_batch_002']);
      expect(
        workers.map((s) => (s.result as { processed_count: number }).processed_count),
        rt,
      ).toEqual([500, 500]);
      byRuntime[rt] = results(view);
    }
    expect(byRuntime.python).toEqual(byRuntime.native);
    expect(byRuntime.ruby).toEqual(byRuntime.native);
  });

  it('reads the same rows from a link inside the folder, a sub-folder, CRLF line ends and a byte-order mark, and converges on an empty file', async () => {
    const want = expectedCsvAggregate(generateProductsCsv(1000));
    for (const [rt] of RUNTIMES) {
      for (const path of ['alias.csv', 'sub/crlf.csv', './sub//crlf.csv']) {
        const view = await run(rt, { csv_file_path: path });
        expect(view.state, `${rt} ${path}`).toBe('complete');
        expect(view.steps.find((s) => s.name === 'aggregate_csv_results')!.result, `${rt} ${path}`).toMatchObject(want);
      }
      const empty = await run(rt, { csv_file_path: 'empty.csv' });
      expect(empty.state, rt).toBe('complete');
      expect(empty.steps.find((s) => s.template_step === 'process_csv_batch')!.name).toBe('process_csv_batch_000');
      expect(empty.steps.find((s) => s.name === 'aggregate_csv_results')!.result, rt).toEqual({
        processed_count: 0,
        total_inventory_value_cents: 0,
        total_inventory_value: '0.00',
        category_counts: {},
        max_price: 0,
        max_price_product: null,
        rating_sum_hundredths: 0,
        average_rating: 0,
      });
    }
  });

  it('without WEFT_EXAMPLES_DATA_DIR, the TypeScript example reads the folder shipped beside the handlers (Python and Ruby: test/native)', async () => {
    delete process.env.WEFT_EXAMPLES_DATA_DIR;
    try {
      const step = (context: unknown) => claimedStep({ handler: 'csv.analyze', name: 'analyze_csv', runtime: 'native', context });
      const plan = (await runners.native.run(step({ csv_file_path: 'products.csv' }))) as { ok: true; json: string };
      expect(plan.ok).toBe(true);
      expect(JSON.parse(plan.json)).toEqual({ $weft: 'batches', cursors: [0, 200, 400, 600, 800].map((s) => ({ start_row: s, end_row: s + 200 })) });
      const refused = await runners.native.run(step({ csv_file_path: '../data/products.csv' }));
      expect((refused as { error: StepErrorRecord }).error.message).toBe(
        `context.csv_file_path has a ".." part; name a CSV file inside the examples data folder ${join(packageRoot(), 'handlers', 'data')}, e.g. "products.csv" (WEFT_EXAMPLES_DATA_DIR sets the folder)`,
      );
    } finally {
      process.env.WEFT_EXAMPLES_DATA_DIR = data;
    }
  });

  // Last: it takes the data folder away.
  it('says so when the data folder itself is missing', async () => {
    renameSync(data, `${data}.gone`);
    try {
      for (const [rt] of RUNTIMES) {
        const error = failedFor(await run(rt, { csv_file_path: 'products.csv' }));
        expect(error.message, rt).toBe(
          `the examples data folder ${data} cannot be opened (ENOENT); create it, or set WEFT_EXAMPLES_DATA_DIR to the folder that holds the CSV files`,
        );
        expect(error.permanent, rt).toBe(true);
      }
    } finally {
      renameSync(`${data}.gone`, data);
    }
  });
});
