/**
 * CSV batch (templates/csv_batch.yaml): analyze_csv splits the file into
 * cursors, one process_csv_batch worker per cursor summarises its rows,
 * aggregate_csv_results merges them. Money is summed in integer cents so
 * totals are exact.
 *
 * context.csv_file_path names a file inside the examples data folder:
 * WEFT_EXAMPLES_DATA_DIR, by default handlers/data (which ships
 * products.csv). Anything that could reach another file is refused: an
 * absolute path, a ".." part, a symbolic link that leads out of the folder.
 * Errors name the field and the folder, never the file's text.
 *
 * handlers/python/csv_batch.py and handlers/ruby/csv_batch.rb do the same,
 * with the same results and the same error messages.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { batches, defineHandlers, PermanentError, type Step } from '../../src/worker/sdk.js';
import { mergeSummaries, parseProducts, ProductsCsvError, summarise, type BatchSummary } from '../../src/examples/products.js';

const DEFAULT_DATA_DIR = fileURLToPath(new URL('../data', import.meta.url));

function dataFolder(): string {
  return resolve(process.env.WEFT_EXAMPLES_DATA_DIR || DEFAULT_DATA_DIR);
}

function refuse(found: string, folder: string): never {
  throw new PermanentError(
    `context.csv_file_path ${found}; name a CSV file inside the examples data folder ${folder}, e.g. "products.csv" (WEFT_EXAMPLES_DATA_DIR sets the folder)`,
  );
}

const errorCode = (err: unknown) => (err as NodeJS.ErrnoException).code ?? 'unknown error';

/** The text of the file context.csv_file_path names, once it is known to lie inside the data folder. */
async function readCsv(step: Step): Promise<string> {
  const folder = dataFolder();
  const name: unknown = step.context?.csv_file_path;
  if (name === undefined) refuse('is missing', folder);
  if (typeof name !== 'string') refuse('is not a string', folder);
  if (name === '') refuse('is empty', folder);
  if (name.includes('\0')) refuse('contains a NUL character', folder);
  if (name.startsWith('/')) refuse('is an absolute path', folder);
  if (name.split('/').includes('..')) refuse('has a ".." part', folder);
  let root: string;
  try {
    root = await realpath(folder);
  } catch (err) {
    throw new PermanentError(
      `the examples data folder ${folder} cannot be opened (${errorCode(err)}); create it, or set WEFT_EXAMPLES_DATA_DIR to the folder that holds the CSV files`,
    );
  }
  let file: string;
  try {
    file = await realpath(join(root, name));
  } catch (err) {
    const code = errorCode(err);
    refuse(code === 'ENOENT' || code === 'ENOTDIR' ? 'names no file in the folder' : `cannot be opened (${code})`, folder);
  }
  if (file !== root && !file.startsWith(root.endsWith('/') ? root : `${root}/`)) refuse('leads out of the folder through a symbolic link', folder);
  let bytes: Buffer;
  try {
    if (!(await stat(file)).isFile()) refuse('names a folder or a device, not a file', folder);
    bytes = await readFile(file);
  } catch (err) {
    if (err instanceof PermanentError) throw err;
    refuse(`cannot be read (${errorCode(err)})`, folder);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new PermanentError('the CSV file is not UTF-8 text');
  }
}

/** Rows and sums, with the CSV's own problems (a bad number, a missing column) as permanent failures. */
function permanent<T>(work: () => T): T {
  try {
    return work();
  } catch (err) {
    if (err instanceof ProductsCsvError) throw new PermanentError(err.message);
    throw err;
  }
}

/** A positive whole number from the template's step inputs. */
function count(step: Step, field: string, dflt: number): number {
  const v = step.inputs[field] ?? dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new PermanentError(`inputs.${field} must be a whole number of at least 1`);
  return v;
}

export const handlers = defineHandlers({
  'csv.analyze': async (step) => {
    const batchSize = count(step, 'batch_size', 200);
    const maxWorkers = count(step, 'max_workers', 5);
    const text = await readCsv(step);
    const rows = permanent(() => parseProducts(text));
    if (rows.length === 0) return batches([]);
    const workers = Math.min(Math.ceil(rows.length / batchSize), maxWorkers);
    const per = Math.ceil(rows.length / workers);
    const cursors = Array.from({ length: workers }, (_, i) => ({ start_row: i * per, end_row: Math.min((i + 1) * per, rows.length) }));
    return batches(cursors);
  },
  'csv.process_batch': async (step) => {
    const cursor = step.batch?.cursor as { start_row?: unknown; end_row?: unknown } | null | undefined;
    const start = cursor?.start_row;
    const end = cursor?.end_row;
    if (!Number.isInteger(start) || !Number.isInteger(end) || (start as number) < 0 || (end as number) < (start as number)) {
      throw new PermanentError('batch.cursor must be {"start_row": a, "end_row": b} with 0 <= a <= b, as csv.analyze returns');
    }
    const text = await readCsv(step);
    const rows = permanent(() => parseProducts(text));
    if ((end as number) > rows.length) {
      throw new PermanentError(`the CSV file has ${rows.length} rows, fewer than this batch's end_row ${end as number}: it changed after analyze_csv read it`);
    }
    return permanent(() => summarise(rows.slice(start as number, end as number)));
  },
  'csv.aggregate': (step) => {
    // Every parent is a batch worker; the no-op placeholder of an empty file has nothing to add.
    const parts = Object.entries(step.dependency_results)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .filter(([, r]) => !(r as { no_op?: boolean } | null)?.no_op)
      .map(([name, r]) => {
        if (typeof (r as BatchSummary | null)?.processed_count !== 'number')
          throw new PermanentError(`dependency_results.${name} is not a batch summary of csv.process_batch`);
        return r as BatchSummary;
      });
    return permanent(() => mergeSummaries(parts));
  },
});
