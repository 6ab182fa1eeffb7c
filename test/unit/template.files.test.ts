import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCycle } from '../../src/core/template/graph.js';
import { loadTemplateDir, loadTemplateFile } from '../../src/core/template/load.js';
import type { TemplateDefinition } from '../../src/core/template/types.js';
import { compileInputSchema } from '../../src/core/template/input-schema.js';
import { generateProductsCsv } from '../../src/examples/products.js';

const ROOT = join(import.meta.dirname, '..', '..', 'templates');

/** Expected shape per base file: step → [handler, type, depends_on]. */
const SHAPES: Record<string, { namespace: string; name: string; steps: Record<string, [string, string, string[]]> }> = {
  'single.yaml': {
    namespace: 'e2e_single',
    name: 'one_step',
    steps: { square: ['linear.square', 'standard', []] },
  },
  'linear.yaml': {
    namespace: 'e2e_linear',
    name: 'mathematical_sequence',
    steps: {
      linear_step_1: ['linear.square', 'standard', []],
      linear_step_2: ['linear.square', 'standard', ['linear_step_1']],
      linear_step_3: ['linear.square', 'standard', ['linear_step_2']],
      linear_step_4: ['linear.square', 'standard', ['linear_step_3']],
    },
  },
  'diamond.yaml': {
    namespace: 'e2e_diamond',
    name: 'diamond_pattern',
    steps: {
      diamond_start: ['diamond.start', 'standard', []],
      diamond_branch_b: ['diamond.branch', 'standard', ['diamond_start']],
      diamond_branch_c: ['diamond.branch', 'standard', ['diamond_start']],
      diamond_end: ['diamond.end', 'standard', ['diamond_branch_b', 'diamond_branch_c']],
    },
  },
  'complex_dag.yaml': {
    namespace: 'e2e_mixed_dag',
    name: 'complex_dag',
    steps: {
      dag_init: ['complex.init', 'standard', []],
      dag_process_left: ['complex.square_parent', 'standard', ['dag_init']],
      dag_process_right: ['complex.square_parent', 'standard', ['dag_init']],
      dag_validate: ['complex.multiply_square', 'standard', ['dag_process_left', 'dag_process_right']],
      dag_transform: ['complex.square_parent', 'standard', ['dag_process_left']],
      dag_analyze: ['complex.square_parent', 'standard', ['dag_process_right']],
      dag_finalize: ['complex.multiply_square', 'standard', ['dag_validate', 'dag_transform', 'dag_analyze']],
    },
  },
  'tree.yaml': {
    namespace: 'e2e_tree',
    name: 'hierarchical_tree',
    steps: {
      tree_root: ['tree.root', 'standard', []],
      tree_branch_left: ['tree.square_parent', 'standard', ['tree_root']],
      tree_branch_right: ['tree.square_parent', 'standard', ['tree_root']],
      tree_leaf_d: ['tree.square_parent', 'standard', ['tree_branch_left']],
      tree_leaf_e: ['tree.square_parent', 'standard', ['tree_branch_left']],
      tree_leaf_f: ['tree.square_parent', 'standard', ['tree_branch_right']],
      tree_leaf_g: ['tree.square_parent', 'standard', ['tree_branch_right']],
      tree_final_convergence: ['tree.multiply_square', 'standard', ['tree_leaf_d', 'tree_leaf_e', 'tree_leaf_f', 'tree_leaf_g']],
    },
  },
  'conditional.yaml': {
    namespace: 'e2e_conditional',
    name: 'approval_routing',
    steps: {
      validate_request: ['approval.validate', 'standard', []],
      routing_decision: ['approval.route', 'decision', ['validate_request']],
      auto_approve: ['approval.auto_approve', 'standard', ['routing_decision']],
      manager_approval: ['approval.manager_approval', 'standard', ['routing_decision']],
      finance_review: ['approval.finance_review', 'standard', ['routing_decision']],
      finalize_approval: ['approval.finalize', 'deferred_convergence', ['auto_approve', 'manager_approval', 'finance_review']],
    },
  },
  'csv_batch.yaml': {
    namespace: 'e2e_csv',
    name: 'csv_product_inventory_analyzer',
    steps: {
      analyze_csv: ['csv.analyze', 'batchable', []],
      process_csv_batch: ['csv.process_batch', 'batch_worker', ['analyze_csv']],
      aggregate_csv_results: ['csv.aggregate', 'deferred_convergence', ['process_csv_batch']],
    },
  },
  'nightly_report.yaml': {
    namespace: 'reports',
    name: 'nightly_report',
    steps: {
      period: ['reports.period', 'standard', []],
      summary: ['reports.summary', 'standard', ['period']],
    },
  },
  'human_approval.yaml': {
    namespace: 'e2e_waits',
    name: 'human_approval',
    steps: {
      request: ['waits.request', 'standard', []],
      manager_approval: ['weft.wait', 'wait', ['request']],
      routing: ['waits.route', 'decision', ['manager_approval']],
      fulfil: ['waits.fulfil', 'standard', ['routing']],
      notify_rejected: ['waits.notify_rejected', 'standard', ['routing']],
    },
  },
  'reminder.yaml': {
    namespace: 'e2e_waits',
    name: 'reminder',
    steps: {
      send_invoice: ['waits.send_invoice', 'standard', []],
      wait_for_payment: ['weft.sleep', 'sleep', ['send_invoice']],
      remind: ['waits.remind', 'standard', ['send_invoice', 'wait_for_payment']],
    },
  },
  'order_flow.yaml': {
    namespace: 'shop',
    name: 'order_flow',
    steps: {
      price_order: ['shop.price_order', 'standard', []],
      charge: ['weft.workflow', 'workflow', ['price_order']],
      ship: ['shop.ship', 'standard', ['charge']],
    },
  },
  'charge_card.yaml': {
    namespace: 'shop',
    name: 'charge_card',
    steps: {
      authorize: ['shop.authorize', 'standard', []],
      capture: ['shop.capture', 'standard', ['authorize']],
    },
  },
  'mixed.yaml': {
    namespace: 'e2e_mixed',
    name: 'polyglot_chain',
    steps: {
      native_square: ['linear.square', 'standard', []],
      python_square: ['linear.square', 'standard', ['native_square']],
      ruby_square: ['linear.square', 'standard', ['python_square']],
      typescript_square: ['linear.square', 'standard', ['ruby_square']],
    },
  },
};

const SUFFIX: Record<string, string> = { python: '_py', ruby: '_rb', typescript: '_ts' };

/** Every file the templates/ tree must hold, with the runtime its steps run in. */
const EXPECTED_FILES: Record<string, string> = {
  ...Object.fromEntries(Object.keys(SHAPES).map((f) => [f, 'native'])),
  ...Object.fromEntries(
    ['python', 'ruby'].flatMap((rt) => ['linear', 'diamond', 'complex_dag', 'tree', 'conditional', 'csv_batch'].map((b) => [`languages/${rt}/${b}.yaml`, rt])),
  ),
  'languages/typescript/linear.yaml': 'typescript',
  'languages/typescript/diamond.yaml': 'typescript',
};

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
}

describe('templates/', () => {
  it('holds exactly the expected files', () => {
    expect(yamlFiles(ROOT)).toEqual(Object.keys(EXPECTED_FILES).sort());
  });

  for (const [file, runtime] of Object.entries(EXPECTED_FILES)) {
    it(`${file} validates and has the expected shape`, async () => {
      const def: TemplateDefinition = await loadTemplateFile(join(ROOT, file));
      const base = file.split('/').pop()!;
      const shape = SHAPES[base]!;
      const suffix = runtime === 'native' ? '' : SUFFIX[runtime];
      expect(def.namespace).toBe(`${shape.namespace}${suffix}`);
      expect(def.name).toBe(shape.name);
      expect(def.version).toBe(base === 'csv_batch.yaml' ? '1.1.0' : '1.0.0'); // 1.1.0: csv_file_path inside the examples data folder (issue 15)
      expect(def.runtime).toBe(runtime);
      expect(def.steps).toHaveLength(Object.keys(shape.steps).length);
      expect(Object.fromEntries(def.steps.map((s) => [s.name, [s.handler, s.type, s.depends_on]]))).toEqual(shape.steps);
      expect(findCycle(def.steps)).toBeNull();
      if (base === 'mixed.yaml') {
        expect(def.steps.map((s) => s.runtime)).toEqual(['native', 'python', 'ruby', 'typescript']);
      } else {
        expect(new Set(def.steps.map((s) => s.runtime))).toEqual(new Set([runtime]));
      }
      if (base === 'csv_batch.yaml') {
        expect(def.steps[0]!.batch).toEqual({ worker_template: 'process_csv_batch', batch_size: 200, max_workers: 5 });
        expect(def.steps[0]!.inputs).toEqual({ batch_size: 200, max_workers: 5 });
      }
    });
  }

  it('loads as one directory with no duplicate namespace/name@version', async () => {
    const defs = await loadTemplateDir(ROOT);
    expect(defs).toHaveLength(Object.keys(EXPECTED_FILES).length);
  });

  it('linear and conditional carry the input schemas the seed relies on', async () => {
    const linear = await loadTemplateFile(join(ROOT, 'linear.yaml'));
    expect(linear.input_schema).toMatchObject({
      required: ['even_number'],
      properties: { even_number: { type: 'integer', minimum: 2, maximum: 100, multipleOf: 2 } },
    });
    const conditional = await loadTemplateFile(join(ROOT, 'conditional.yaml'));
    expect(conditional.input_schema).toMatchObject({
      required: ['amount', 'requester', 'purpose'],
      properties: { amount: { type: 'number', exclusiveMinimum: 0 }, requester: { type: 'string' }, purpose: { type: 'string' } },
    });
  });
});

describe('the CSV examples', () => {
  it('are one definition in three runtimes, whose example context passes the input_schema and names the shipped sample', async () => {
    const files = ['csv_batch.yaml', 'languages/python/csv_batch.yaml', 'languages/ruby/csv_batch.yaml'];
    const [ts, ...others] = await Promise.all(files.map((f) => loadTemplateFile(join(ROOT, f))));
    const runtimeFree = (d: TemplateDefinition) => ({ ...d, namespace: '', runtime: '', steps: d.steps.map((s) => ({ ...s, runtime: '' })) });
    for (const d of others) expect(runtimeFree(d!)).toEqual(runtimeFree(ts!));
    const examples = (ts!.input_schema as { examples: unknown[] }).examples;
    expect(examples).toEqual([{ csv_file_path: 'products.csv' }]);
    expect(compileInputSchema(ts!)(examples[0])).toEqual({ ok: true });
    // The sample the examples ship is the products CSV the benchmark generates.
    expect(readFileSync(join(ROOT, '..', 'handlers', 'data', 'products.csv'), 'utf8')).toBe(generateProductsCsv(1000));
  });
});

describe('docs/templates.md', () => {
  it('its worked example validates and its input_schema refuses an odd number', async () => {
    const { readFile } = await import('node:fs/promises');
    const { parseTemplate } = await import('../../src/core/template/parse.js');
    const { compileInputSchema } = await import('../../src/core/template/input-schema.js');
    const md = await readFile(join(import.meta.dirname, '..', '..', 'docs', 'templates.md'), 'utf8');
    const example = md.split('## A worked example')[1]!.split('```yaml\n')[1]!.split('```')[0]!;
    const def = parseTemplate(example, 'docs example');
    expect(def.steps.map((s) => s.runtime)).toEqual(['native', 'native', 'python']);
    expect(def.steps[1]!.retry).toEqual({ max_attempts: 5, backoff: 'linear', base_ms: 100, max_ms: 10_000 });
    const check = compileInputSchema(def);
    expect(check({ even_number: 3 })).toEqual({
      ok: false,
      problems: [{ path: 'context.even_number', message: 'context.even_number must be multiple of 2 (found 3)' }],
    });
  });
});
