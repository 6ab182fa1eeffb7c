import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { loadConfig } from '../shared/config.js';
import { ValidationError } from '../shared/errors.js';
import type { BatchItemResult } from '../orchestration/orchestrator.js';
import { submitTasks } from '../ops/submit-tasks.js';
import { integer } from './options.js';

type Out = (s: string) => void;

/** One task request per non-blank line of a JSON Lines text; a line that is not JSON is refused with its number. */
export function parseTaskLines(text: string, file: string): Array<{ line: number; task: unknown }> {
  const tasks: Array<{ line: number; task: unknown }> = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    try {
      tasks.push({ line: i + 1, task: JSON.parse(raw) });
    } catch (err) {
      throw new ValidationError(
        `${file}:${i + 1} is not JSON (${(err as Error).message}); each line must be one task, e.g. {"namespace": "e2e_single", "name": "one_step", "context": {"even_number": 2}}`,
        `${file}:${i + 1}`,
      );
    }
  });
  if (tasks.length === 0) throw new ValidationError(`${file} holds no task; write one JSON task request per line`, file);
  return tasks;
}

/** One output line per task: `LINE<TAB>ID<TAB>created|existing`, or `LINE<TAB>error<TAB>CODE: MESSAGE`. */
function describeResult(line: number, r: BatchItemResult): string {
  if ('error' in r) return `${line}\terror\t${r.error.code}: ${r.error.message}${r.error.path ? ` (at ${r.error.path})` : ''}`;
  return `${line}\t${r.id}\t${r.outcome}${r.run_at ? `\tstarts at ${r.run_at}` : ''}`;
}

/**
 * `weft task submit FILE` (also `weft tasks submit`): create one task per line of a JSON Lines file
 * (`-`: standard input), each line a POST /v1/tasks body, in batches of
 * --batch-size (each one statement and one commit). Exit 1 when any line
 * failed; the others are created either way.
 */
export function registerTaskSubmitCommand(task: Command, out: Out = (s) => process.stdout.write(`${s}\n`)): void {
  task
    .alias('tasks')
    .command('submit')
    .description('create one task per line of a JSON Lines file (each line a POST /v1/tasks body), in batches of one commit each')
    .argument('<file>', 'the JSON Lines file, or - for standard input')
    .option('--batch-size <n>', "tasks per batch (at most the server's WEFT_TASK_BATCH_LIMIT)", integer(1, 100_000), 1_000)
    .option('--json', 'print one JSON object per task: {line, index, id, outcome} or {line, index, error}', false)
    .action(async (file: string, opts: { batchSize: number; json: boolean }) => {
      const text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
      const lines = parseTaskLines(text, file === '-' ? 'stdin' : file);
      const results = await submitTasks(
        loadConfig(),
        lines.map((l) => l.task),
        opts.batchSize,
      );
      let failed = 0;
      results.forEach((r, i) => {
        if ('error' in r) failed++;
        out(opts.json ? JSON.stringify({ line: lines[i]!.line, ...r }) : describeResult(lines[i]!.line, r));
      });
      const existing = results.filter((r) => 'outcome' in r && r.outcome === 'existing').length;
      process.stderr.write(`weft: ${results.length - failed - existing} created, ${existing} existing (idempotency key seen before), ${failed} failed\n`);
      if (failed > 0) process.exitCode = 1;
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
