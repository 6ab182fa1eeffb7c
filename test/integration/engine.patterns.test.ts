import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { results, startEngine, type Backend, type Engine } from '../support/engine.js';
import { generateProductsCsv } from '../../src/examples/products.js';

const sq = (n: bigint) => n * n;
const big = (n: bigint) => (n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString());

describe.each<Backend>(['pg', 'rabbitmq'])('every seed workflow completes with the right results (%s)', (backend) => {
  let tdb: TestDatabase;
  let engine: Engine;
  let dir: string;

  const savedDataDir = process.env.WEFT_EXAMPLES_DATA_DIR;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    engine = await startEngine({ backend, url: tdb.url, workers: 2 });
    // The CSV handlers read only the examples data folder: this test's own.
    dir = mkdtempSync(join(tmpdir(), 'weft-csv-'));
    process.env.WEFT_EXAMPLES_DATA_DIR = dir;
  });
  afterAll(async () => {
    await engine?.stop();
    await tdb?.drop();
    rmSync(dir, { recursive: true, force: true });
    if (savedDataDir === undefined) delete process.env.WEFT_EXAMPLES_DATA_DIR;
    else process.env.WEFT_EXAMPLES_DATA_DIR = savedDataDir;
  });

  it('linear: each step squares its parent', async () => {
    const view = await engine.run('e2e_linear', 'mathematical_sequence', { even_number: 6 });
    expect(view.state).toBe('complete');
    expect(results(view)).toEqual({ linear_step_1: 36, linear_step_2: 1296, linear_step_3: 1679616, linear_step_4: 2821109907456 });
    expect(view.steps.every((s) => s.attempts === 1)).toBe(true);
  });

  it('diamond: two parallel branches, the end multiplies both and squares', async () => {
    const view = await engine.run('e2e_diamond', 'diamond_pattern', { even_number: 6 });
    expect(view.state).toBe('complete');
    expect(results(view)).toEqual({ diamond_start: 36, diamond_branch_b: 1296, diamond_branch_c: 1296, diamond_end: 2821109907456 });
  });

  it('complex DAG: 7 steps, exact big integers', async () => {
    const view = await engine.run('e2e_mixed_dag', 'complex_dag', { even_number: 6 });
    const init = 36n;
    const left = sq(init);
    const right = sq(init);
    const validate = sq(left * right);
    const transform = sq(left);
    const analyze = sq(right);
    const finalize = sq(validate * transform * analyze);
    expect(view.state).toBe('complete');
    expect(results(view)).toEqual({
      dag_init: 36,
      dag_process_left: big(left),
      dag_process_right: big(right),
      dag_validate: big(validate),
      dag_transform: big(transform),
      dag_analyze: big(analyze),
      dag_finalize: finalize.toString(),
    });
  });

  it('hierarchical tree: 8 steps, a 4-way convergence returns 6^64 exactly', async () => {
    const view = await engine.run('e2e_tree', 'hierarchical_tree', { even_number: 6 });
    expect(view.state).toBe('complete');
    const r = results(view);
    expect(r.tree_leaf_d).toBe(1679616);
    expect(r.tree_final_convergence).toBe((6n ** 64n).toString());
    expect(view.steps).toHaveLength(8);
  });

  it.each([
    [500, ['auto_approve']],
    [2500, ['manager_approval']],
    [7500, ['finance_review', 'manager_approval']],
  ])('conditional approval routes amount %d to %j and converges', async (amount, branches) => {
    const view = await engine.run('e2e_conditional', 'approval_routing', { amount, requester: 'ada', purpose: 'laptop' });
    expect(view.state).toBe('complete');
    const names = view.steps.map((s) => s.name).sort();
    expect(names).toEqual(['finalize_approval', 'routing_decision', 'validate_request', ...branches].sort());
    const finalize = view.steps.find((s) => s.name === 'finalize_approval')!;
    expect(finalize.parents).toEqual(branches);
    expect(finalize.result).toEqual({ approved: true, approvals: branches });
  });

  it('CSV batch: 5 parallel workers, the aggregate equals a direct computation over the file', async () => {
    const file = join(dir, 'products.csv');
    writeFileSync(file, generateProductsCsv(1000));
    const view = await engine.run('e2e_csv', 'csv_product_inventory_analyzer', { csv_file_path: 'products.csv' });
    expect(view.state).toBe('complete');
    const workers = view.steps
      .filter((s) => s.template_step === 'process_csv_batch')
      .map((s) => s.name)
      .sort();
    expect(workers).toEqual(['process_csv_batch_001', 'process_csv_batch_002', 'process_csv_batch_003', 'process_csv_batch_004', 'process_csv_batch_005']);

    // Independent computation, straight from the text.
    const [header, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
    const col = header!.split(',');
    let cents = 0n;
    let ratings = 0;
    let maxPrice = -1;
    let maxTitle = '';
    const counts: Record<string, number> = {};
    for (const line of lines) {
      const f = line.split(',');
      const price = f[col.indexOf('price')]!;
      const stock = BigInt(f[col.indexOf('stock')]!);
      cents += BigInt(price.replace('.', '')) * stock;
      ratings += Math.round(Number(f[col.indexOf('rating')]) * 100);
      counts[f[col.indexOf('category')]!] = (counts[f[col.indexOf('category')]!] ?? 0) + 1;
      if (Number(price) > maxPrice) [maxPrice, maxTitle] = [Number(price), f[col.indexOf('title')]!];
    }
    const agg = view.steps.find((s) => s.name === 'aggregate_csv_results')!.result as Record<string, unknown>;
    expect(agg.processed_count).toBe(1000);
    expect(BigInt(agg.total_inventory_value_cents as number)).toBe(cents);
    expect(agg.category_counts).toEqual(counts);
    expect(agg.max_price).toBe(maxPrice);
    expect(agg.max_price_product).toBe(maxTitle);
    expect(agg.rating_sum_hundredths).toBe(ratings);
  });

  it('CSV batch with nothing to batch still converges through one no-op worker', async () => {
    writeFileSync(join(dir, 'empty.csv'), generateProductsCsv(0));
    const view = await engine.run('e2e_csv', 'csv_product_inventory_analyzer', { csv_file_path: 'empty.csv' });
    expect(view.state).toBe('complete');
    const placeholder = view.steps.find((s) => s.template_step === 'process_csv_batch')!;
    expect(placeholder.name).toBe('process_csv_batch_000');
    expect(placeholder.result).toEqual({ no_op: true });
    expect((view.steps.find((s) => s.name === 'aggregate_csv_results')!.result as { processed_count: number }).processed_count).toBe(0);
  });
});
