/**
 * CSV batch: analyze_csv splits the file into cursors, one process_csv_batch
 * worker per cursor summarises its rows, aggregate_csv_results merges them.
 * Money is summed in integer cents so totals are exact.
 */
import { readFile } from 'node:fs/promises';
import { batches, defineHandlers, PermanentError } from '../../src/worker/sdk.js';
import { mergeSummaries, parseProducts, summarise, type BatchSummary } from '../../src/examples/products.js';

async function readRows(path: unknown) {
  if (typeof path !== 'string' || !path) throw new PermanentError('context.csv_file_path must name a CSV file');
  try {
    return parseProducts(await readFile(path, 'utf8'));
  } catch (err) {
    throw new PermanentError(`cannot read ${path}: ${(err as Error).message}`);
  }
}

export const handlers = defineHandlers({
  'csv.analyze': async (step) => {
    const rows = await readRows(step.context?.csv_file_path);
    const batchSize = Number(step.inputs.batch_size ?? 200);
    const maxWorkers = Number(step.inputs.max_workers ?? 5);
    if (rows.length === 0) return batches([]);
    const workers = Math.min(Math.ceil(rows.length / batchSize), maxWorkers);
    const per = Math.ceil(rows.length / workers);
    const cursors = Array.from({ length: workers }, (_, i) => ({ start_row: i * per, end_row: Math.min((i + 1) * per, rows.length) }));
    return batches(cursors);
  },
  'csv.process_batch': async (step) => {
    const cursor = step.batch?.cursor as { start_row: number; end_row: number };
    const rows = await readRows(step.context?.csv_file_path);
    return summarise(rows.slice(cursor.start_row, cursor.end_row));
  },
  'csv.aggregate': (step) => {
    const parts = Object.entries(step.dependency_results)
      .filter(([name, r]) => name.startsWith('process_csv_batch_') && !(r as { no_op?: boolean }).no_op)
      .map(([, r]) => r as BatchSummary);
    return mergeSummaries(parts);
  },
});
