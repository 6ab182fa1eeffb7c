/**
 * The reference system's published figures (the seed,
 * ../shared/seed/000_10a861f7c097b591.txt, TAS-166), Run 1 / Run 2 P50 in ms.
 * They were measured with a client that slept 50 ms between status polls
 * (reference-system.md §8.2), so each is rounded up to the next poll: compare
 * shapes and ratios, not the last millisecond.
 */
export interface ReferenceFigure {
  name: string;
  runs: [number, number];
}

export const REFERENCE: Record<string, ReferenceFigure> = {
  linear: { name: 'tier1_core/workflow/linear_rust', runs: [258.17, 255.26] },
  diamond: { name: 'tier1_core/workflow/diamond_rust', runs: [199.6, 259.26] },
  conditional: { name: 'tier2_complexity/workflow/conditional_rust', runs: [250.9, 262.13] },
  complex_dag: { name: 'tier2_complexity/workflow/complex_dag_rust', runs: [382.3, 381.69] },
  tree: { name: 'tier2_complexity/workflow/hierarchical_tree_rust', runs: [388.88, 425.65] },
  single_task: { name: 'tier3_cluster/cluster/single_task_linear', runs: [261.34, 261.16] },
  concurrent_2x: { name: 'tier3_cluster/cluster/concurrent_tasks_2x', runs: [331.91, 383.64] },
  ruby_linear: { name: 'tier4_languages/ruby/linear', runs: [312.4, 315.27] },
  ruby_diamond: { name: 'tier4_languages/ruby/diamond', runs: [260.97, 259.92] },
  python_linear: { name: 'tier4_languages/python/linear', runs: [314.72, 315.17] },
  python_diamond: { name: 'tier4_languages/python/diamond', runs: [260.38, 275.16] },
  typescript_linear: { name: 'tier4_languages/typescript/linear', runs: [315.08, 315.95] },
  typescript_diamond: { name: 'tier4_languages/typescript/diamond', runs: [260.37, 269.79] },
  csv: { name: 'tier5_batch/batch/csv_products_1000_rows', runs: [357.76, 367.86] },
};

/** Mean of the reference's two run P50s. */
export function referenceP50(id: string): number | undefined {
  const r = REFERENCE[id];
  return r ? (r.runs[0] + r.runs[1]) / 2 : undefined;
}

export const REFERENCE_BATCH_ROWS_PER_S = 2700;
export const REFERENCE_FFI_OVERHEAD_PCT = 23;

/** The seed's earlier TAS-71 baseline, which the seed itself shows is internally inconsistent. */
export const TAS71_BASELINE: Record<string, number> = {
  linear: 126.66,
  diamond: 127.26,
  python_linear: 183.87,
  python_diamond: 185.85,
  typescript_linear: 183.31,
  typescript_diamond: 186.53,
};
