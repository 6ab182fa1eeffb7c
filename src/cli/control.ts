import type { Command } from 'commander';
import { loadConfig } from '../shared/config.js';
import { checkTaskId, openTaskSource } from './task-source.js';
import { ValidationError } from '../shared/errors.js';

type Out = (s: string) => void;

/**
 * `weft cancel ID [--reason TEXT]`, `weft retry ID [--step NAME]` and
 * `weft signal ID STEP --data JSON`. With
 * WEFT_ORCHESTRATOR_URL they ask that orchestrator through WeftClient
 * (sending WEFT_API_TOKEN); without, they act on the database directly, as
 * an orchestrator would (the audit rows name the operating-system user).
 */
export function registerControlCommands(program: Command, out: Out = (s) => process.stdout.write(`${s}\n`)): void {
  program
    .command('cancel')
    .description('cancel a pending or running task: its steps stop (running ones are interrupted) and end cancelled')
    .argument('<task-id>')
    .option('--reason <text>', "why (kept in the task's history with who cancelled it)")
    .option('--json', 'print { id, state, interrupted }', false)
    .action(async (id: string, opts: { reason?: string; json: boolean }) => {
      checkTaskId(id);
      const source = await openTaskSource(loadConfig(), 'cancel');
      const r = await source.cancel(id, opts.reason).finally(() => source.close());
      if (opts.json) out(JSON.stringify({ id, state: 'cancelled', interrupted: r.interrupted }));
      else out(`task ${id} cancelled${r.interrupted ? ` (${r.interrupted} running step${r.interrupted === 1 ? '' : 's'} interrupted)` : ''}`);
    });

  program
    .command('retry')
    .description('run a task that failed or was cancelled again from its failed and cancelled steps, with a fresh retry budget')
    .argument('<task-id>')
    .option('--step <name>', 'retry from this failed step (it must be the only failed one)')
    .option('--json', 'print { id, state, enqueued }', false)
    .action(async (id: string, opts: { step?: string; json: boolean }) => {
      checkTaskId(id);
      const source = await openTaskSource(loadConfig(), 'retry');
      const r = await source.retry(id, opts.step).finally(() => source.close());
      if (opts.json) out(JSON.stringify({ id, state: 'running', enqueued: r.enqueued }));
      else out(`task ${id} running again (${r.enqueued} step${r.enqueued === 1 ? '' : 's'} ready now)`);
    });

  program
    .command('signal')
    .description("complete a waiting `wait` step of a task: the data (JSON, checked against the step's payload_schema) becomes its result")
    .argument('<task-id>')
    .argument('<step>', 'the wait step, by name')
    .option('--data <json>', "the step's result, as JSON", '{}')
    .action(async (id: string, step: string, opts: { data: string }) => {
      checkTaskId(id);
      let data: unknown;
      try {
        data = JSON.parse(opts.data);
      } catch (err) {
        throw new ValidationError(`--data is not JSON: ${(err as Error).message}; e.g. --data '{"approved": true}'`, 'data');
      }
      const source = await openTaskSource(loadConfig(), 'signal');
      await source.signal(id, step, data).finally(() => source.close());
      out(`step ${step} of task ${id} signalled: complete`);
    });
}
