/**
 * The benchmark scenarios (issue 5, tiers as in the seed) and how each one's
 * results are checked. Pure: the runner supplies the task views.
 */
import type { Runtime } from './types.js';
import { parseProducts, summarise } from '../examples/products.js';

/** The parts of `GET /v1/tasks/:id/wait` a check reads. */
export interface TaskOutcome {
  state: string;
  steps: Array<{ name: string; state: string; result: unknown }>;
}

export interface ScenarioDef {
  id: string;
  tier: 1 | 2 | 3 | 4 | 5;
  label: string;
  runtime: Runtime;
  pattern: 'single' | 'linear' | 'diamond' | 'conditional' | 'complex_dag' | 'tree' | 'csv';
  namespace: string;
  name: string;
  steps: number;
  sequential_stages: number;
  /** single: one task via orchestrator 0; round_robin: one task, orchestrators in turn; concurrent: one task per orchestrator at once. */
  mode: 'single' | 'round_robin' | 'concurrent';
  timeoutMs: number;
  /** Sequential scenarios get a per-phase breakdown (the steps form one chain). */
  sequential: boolean;
}

const sq = (v: bigint) => v * v;

const LINEAR_EXPECTED: Record<string, bigint> = {
  linear_step_1: 36n,
  linear_step_2: 1296n,
  linear_step_3: 1679616n,
  linear_step_4: 2821109907456n,
};
const DIAMOND_EXPECTED: Record<string, bigint> = {
  diamond_start: 36n,
  diamond_branch_b: 1296n,
  diamond_branch_c: 1296n,
  diamond_end: 2821109907456n,
};
const DAG_EXPECTED: Record<string, bigint> = (() => {
  const init = 36n;
  const left = sq(init);
  const right = sq(init);
  const validate = sq(left * right);
  const transform = sq(left);
  const analyze = sq(right);
  return {
    dag_init: init,
    dag_process_left: left,
    dag_process_right: right,
    dag_validate: validate,
    dag_transform: transform,
    dag_analyze: analyze,
    dag_finalize: sq(validate * transform * analyze),
  };
})();

function linear(id: string, tier: 1 | 3 | 4, runtime: Runtime, namespace: string, label: string, mode: ScenarioDef['mode'] = 'single'): ScenarioDef {
  return {
    id,
    tier,
    label,
    runtime,
    pattern: 'linear',
    namespace,
    name: 'mathematical_sequence',
    steps: 4,
    sequential_stages: 4,
    mode,
    timeoutMs: 15_000,
    sequential: mode !== 'concurrent',
  };
}
function diamond(id: string, tier: 1 | 4, runtime: Runtime, namespace: string, label: string): ScenarioDef {
  return {
    id,
    tier,
    label,
    runtime,
    pattern: 'diamond',
    namespace,
    name: 'diamond_pattern',
    steps: 4,
    sequential_stages: 3,
    mode: 'single',
    timeoutMs: 15_000,
    sequential: false,
  };
}

/** Every scenario, in report order. `id` is what `--scenarios` filters on. */
export const SCENARIOS: readonly ScenarioDef[] = [
  {
    id: 'single_step',
    tier: 1,
    label: 'single-step task (native)',
    runtime: 'native',
    pattern: 'single',
    namespace: 'e2e_single',
    name: 'one_step',
    steps: 1,
    sequential_stages: 1,
    mode: 'single',
    timeoutMs: 15_000,
    sequential: false,
  },
  linear('linear', 1, 'native', 'e2e_linear', 'linear (native)'),
  diamond('diamond', 1, 'native', 'e2e_diamond', 'diamond (native)'),
  {
    id: 'conditional',
    tier: 2,
    label: 'conditional (amount 500)',
    runtime: 'native',
    pattern: 'conditional',
    namespace: 'e2e_conditional',
    name: 'approval_routing',
    steps: 4,
    sequential_stages: 4,
    mode: 'single',
    timeoutMs: 15_000,
    sequential: false,
  },
  {
    id: 'complex_dag',
    tier: 2,
    label: 'complex DAG',
    runtime: 'native',
    pattern: 'complex_dag',
    namespace: 'e2e_mixed_dag',
    name: 'complex_dag',
    steps: 7,
    sequential_stages: 4,
    mode: 'single',
    timeoutMs: 15_000,
    sequential: false,
  },
  {
    id: 'tree',
    tier: 2,
    label: 'hierarchical tree',
    runtime: 'native',
    pattern: 'tree',
    namespace: 'e2e_tree',
    name: 'hierarchical_tree',
    steps: 8,
    sequential_stages: 4,
    mode: 'single',
    timeoutMs: 20_000,
    sequential: false,
  },
  linear('single_task', 3, 'native', 'e2e_linear', 'single task, round-robin over the orchestrators', 'round_robin'),
  { ...linear('concurrent_2x', 3, 'native', 'e2e_linear', 'one task per orchestrator, concurrently', 'concurrent'), steps: 8 },
  linear('python_linear', 4, 'python', 'e2e_linear_py', 'python linear'),
  diamond('python_diamond', 4, 'python', 'e2e_diamond_py', 'python diamond'),
  linear('ruby_linear', 4, 'ruby', 'e2e_linear_rb', 'ruby linear'),
  diamond('ruby_diamond', 4, 'ruby', 'e2e_diamond_rb', 'ruby diamond'),
  linear('typescript_linear', 4, 'typescript', 'e2e_linear_ts', 'typescript (bridge) linear'),
  diamond('typescript_diamond', 4, 'typescript', 'e2e_diamond_ts', 'typescript (bridge) diamond'),
  {
    id: 'csv',
    tier: 5,
    label: 'CSV batch, 1000 rows',
    runtime: 'native',
    pattern: 'csv',
    namespace: 'e2e_csv',
    name: 'csv_product_inventory_analyzer',
    steps: 7,
    sequential_stages: 3,
    mode: 'single',
    timeoutMs: 45_000,
    sequential: false,
  },
];

/** The throughput scenario's id for `--scenarios`. */
export const THROUGHPUT_ID = 'throughput';

/** The I/O-bound tier's id for `--scenarios` (src/benchmark/io.ts). */
export const IO_TIER_ID = 'io';

/**
 * Resolve a `--scenarios` list: scenario ids, `tier1`..`tier5`, `throughput`
 * or `io` (the I/O-bound tier). Unknown names are an error that lists the
 * known ones.
 */
export function selectScenarios(filter: string[] | undefined): { scenarios: ScenarioDef[]; throughput: boolean; io: boolean } {
  if (!filter || filter.length === 0) return { scenarios: [...SCENARIOS], throughput: true, io: true };
  const chosen = new Set<string>();
  let throughput = false;
  let io = false;
  for (const raw of filter) {
    const f = raw.trim();
    if (!f) continue;
    if (f === THROUGHPUT_ID) {
      throughput = true;
      continue;
    }
    if (f === IO_TIER_ID) {
      io = true;
      continue;
    }
    const tier = /^tier([1-5])$/.exec(f);
    const hits = tier ? SCENARIOS.filter((s) => s.tier === Number(tier[1])) : SCENARIOS.filter((s) => s.id === f);
    if (hits.length === 0) {
      throw new Error(
        `--scenarios names "${f}", which is not a scenario; use any of ${[...SCENARIOS.map((s) => s.id), 'tier1', '…', 'tier5', THROUGHPUT_ID, IO_TIER_ID].join(', ')}`,
      );
    }
    for (const h of hits) chosen.add(h.id);
  }
  return { scenarios: SCENARIOS.filter((s) => chosen.has(s.id)), throughput, io };
}

/**
 * The task context each scenario sends. The CSV examples read only their data
 * folder: the runner writes the products CSV into the run's folder, points the
 * workers' WEFT_EXAMPLES_DATA_DIR at it and supplies the file's name.
 */
export function contextFor(s: ScenarioDef, extra: { csvFile?: string; instance?: number } = {}): Record<string, unknown> {
  switch (s.pattern) {
    case 'conditional':
      return { amount: 500, requester: 'benchmark', purpose: 'benchmark_test' };
    case 'csv':
      if (!extra.csvFile) throw new Error('the csv scenario needs the name of the generated products CSV in the examples data folder');
      return { csv_file_path: extra.csvFile, analysis_mode: 'inventory' };
    default:
      return extra.instance === undefined ? { even_number: 6 } : { even_number: 6, _instance: extra.instance };
  }
}

/** JSON text with object keys sorted: jsonb reorders keys, so compare canonically. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : val,
  );
}

function resultsByName(view: TaskOutcome): Map<string, unknown> {
  return new Map(view.steps.map((s) => [s.name, s.result]));
}

function checkExact(view: TaskOutcome, expected: Record<string, bigint>): string | undefined {
  const got = resultsByName(view);
  for (const [step, want] of Object.entries(expected)) {
    if (!got.has(step)) return `step ${step} is missing`;
    const v = got.get(step);
    if ((typeof v !== 'number' && typeof v !== 'string') || String(v) !== want.toString()) {
      return `step ${step} returned ${JSON.stringify(v)}, expected ${want.toString()}`;
    }
  }
  return undefined;
}

/**
 * Check one finished task: undefined when its state and results are right,
 * else a sentence saying what was found and what was expected.
 * `csvExpected` is `expectedCsvAggregate(text)` of the file the task read.
 */
export function verifyOutcome(s: ScenarioDef, view: TaskOutcome, csvExpected?: Record<string, unknown>): string | undefined {
  if (view.state !== 'complete') return `task ended in state ${view.state}, expected complete`;
  const failed = view.steps.find((st) => st.state !== 'complete');
  if (failed) return `step ${failed.name} is ${failed.state}, expected complete`;
  switch (s.pattern) {
    case 'single':
      return checkExact(view, { square: 36n });
    case 'linear':
      return checkExact(view, LINEAR_EXPECTED);
    case 'diamond':
      return checkExact(view, DIAMOND_EXPECTED);
    case 'complex_dag':
      return checkExact(view, DAG_EXPECTED);
    case 'tree': {
      const v = resultsByName(view).get('tree_final_convergence');
      const want = (6n ** 64n).toString();
      if (view.steps.length !== 8) return `tree has ${view.steps.length} steps, expected 8`;
      return String(v) === want ? undefined : `tree_final_convergence returned ${JSON.stringify(v)}, expected ${want}`;
    }
    case 'conditional': {
      const names = view.steps
        .map((st) => st.name)
        .sort()
        .join(',');
      if (names !== 'auto_approve,finalize_approval,routing_decision,validate_request')
        return `conditional created steps ${names}, expected auto_approve, finalize_approval, routing_decision, validate_request`;
      const v = resultsByName(view).get('finalize_approval');
      const want = { approved: true, approvals: ['auto_approve'] };
      return canonicalJson(v) === canonicalJson(want) ? undefined : `finalize_approval returned ${JSON.stringify(v)}, expected ${JSON.stringify(want)}`;
    }
    case 'csv': {
      if (!csvExpected) return 'no expected aggregate for the csv scenario';
      const workers = view.steps.filter((st) => st.name.startsWith('process_csv_batch_')).length;
      if (workers !== 5) return `csv batch ran ${workers} batch workers, expected 5`;
      const agg = resultsByName(view).get('aggregate_csv_results') as Record<string, unknown> | undefined;
      if (!agg || typeof agg !== 'object') return `aggregate_csv_results returned ${JSON.stringify(agg)}, expected an object`;
      for (const [k, want] of Object.entries(csvExpected)) {
        if (canonicalJson(agg[k]) !== canonicalJson(want)) return `aggregate_csv_results.${k} is ${JSON.stringify(agg[k])}, expected ${JSON.stringify(want)}`;
      }
      return undefined;
    }
  }
}

/** The aggregate fields a correct CSV run must produce, computed directly from the file's text. */
export function expectedCsvAggregate(csvText: string): Record<string, unknown> {
  const s = summarise(parseProducts(csvText));
  return {
    processed_count: s.processed_count,
    total_inventory_value_cents: s.total_inventory_value_cents,
    category_counts: s.category_counts,
    max_price: s.max_price,
    max_price_product: s.max_price_product,
    rating_sum_hundredths: s.rating_sum_hundredths,
  };
}
