import type { Command } from 'commander';
import { loadConfig } from '../shared/config.js';
import { NotFoundError } from '../shared/errors.js';
import { integer } from './options.js';
import { checkState, checkTaskId, openTaskSource, splitTemplate, type TaskSource } from './task-source.js';
import { printStep, printTask, printTaskList } from './task-format.js';
import { exitCodeOf } from './run.js';

type Out = (s: string) => void;

async function withSource<T>(command: string, work: (source: TaskSource) => Promise<T>): Promise<T> {
  const source = await openTaskSource(loadConfig(), command);
  try {
    return await work(source);
  } finally {
    await source.close();
  }
}

/**
 * `weft task list|show|wait`: read tasks through the orchestrator at
 * WEFT_ORCHESTRATOR_URL (with WEFT_API_TOKEN) or, without one, from the
 * database; the output is the same either way (src/cli/task-format.ts).
 */
export function registerTaskCommands(program: Command, out: Out = (s) => process.stdout.write(`${s}\n`)): Command {
  const task = program.command('task').description('list tasks, show one with its steps and errors, wait for one to end, submit many');

  task
    .command('list')
    .description('tasks, newest first, with their failure in a line and the counts by state')
    .option('--state <state>', 'only tasks in this state: pending, running, complete, error, cancelled')
    .option('--template <namespace/name>', 'only tasks of this template')
    .option('--limit <n>', 'at most this many (1 … 500)', integer(1, 500), 20)
    .option('--cursor <cursor>', 'the next page: the cursor the previous one printed')
    .option('--json', 'print the page as GET /v1/tasks answers it', false)
    .action(async (opts: { state?: string; template?: string; limit: number; cursor?: string; json: boolean }) => {
      const state = checkState(opts.state);
      const [namespace, name] = opts.template === undefined ? [] : splitTemplate(opts.template);
      const page = await withSource('task-list', (s) => s.list({ state, namespace, name, limit: opts.limit, cursor: opts.cursor }));
      if (opts.json) out(JSON.stringify(page, null, 2));
      else printTaskList(page, out);
    });

  task
    .command('show')
    .description("a task's steps (result or error, attempts, duration) and every failed step's error with its backtrace")
    .argument('<task-id>')
    .option('--step <name>', 'one step in full: handler, worker, times, result, and every attempt’s error')
    .option('--json', 'print the task (or the step) as GET /v1/tasks/:id answers it', false)
    .action(async (id: string, opts: { step?: string; json: boolean }) => {
      checkTaskId(id);
      const t = await withSource('task-show', (s) => s.get(id));
      if (opts.step === undefined) {
        if (opts.json) out(JSON.stringify(t, null, 2));
        else printTask(t, out);
        return;
      }
      const step = t.steps.find((s) => s.name === opts.step);
      if (!step) throw new NotFoundError(`task ${id} has no step ${JSON.stringify(opts.step)}; its steps: ${t.steps.map((s) => s.name).join(', ')}`);
      if (opts.json) out(JSON.stringify(step, null, 2));
      else printStep(t, step, out);
    });

  task
    .command('wait')
    .description('wait for a task to end and show it; exit 0 complete, 1 failed or cancelled, 3 still running at --timeout')
    .argument('<task-id>')
    .option('--timeout <ms>', 'how long to wait', integer(0), 120_000)
    .option('--json', 'print the task as GET /v1/tasks/:id/wait answers it', false)
    .action(async (id: string, opts: { timeout: number; json: boolean }) => {
      checkTaskId(id);
      const t = await withSource('task-wait', (s) => s.wait(id, opts.timeout));
      if (opts.json) out(JSON.stringify(t, null, 2));
      else {
        printTask(t, out);
        if (!t.ended) out(`still ${t.state} after ${opts.timeout} ms`);
      }
      process.exitCode = exitCodeOf(t);
    });
  return task;
}
