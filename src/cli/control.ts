import type { Command } from 'commander';
import { loadConfig } from '../shared/config.js';
import { controlTask as control } from '../ops/task-control.js';

type Out = (s: string) => void;

/**
 * `weft cancel ID [--reason TEXT]` and `weft retry ID [--step NAME]`. With
 * WEFT_ORCHESTRATOR_URL they ask that orchestrator (sending WEFT_API_TOKEN);
 * without, they act on the database directly, as an orchestrator would
 * (the audit rows name the operating-system user).
 */
export function registerControlCommands(program: Command, out: Out = (s) => process.stdout.write(`${s}\n`)): void {
  program
    .command('cancel')
    .description('cancel a pending or running task: its steps stop (running ones are interrupted) and end cancelled')
    .argument('<task-id>')
    .option('--reason <text>', "why (kept in the task's history with who cancelled it)")
    .action(async (id: string, opts: { reason?: string }) => {
      const r = await control(loadConfig(), id, 'cancel', { reason: opts.reason });
      out(`task ${id} cancelled${r.interrupted ? ` (${r.interrupted} running step${r.interrupted === 1 ? '' : 's'} interrupted)` : ''}`);
    });

  program
    .command('retry')
    .description('run a task that failed or was cancelled again from its failed and cancelled steps, with a fresh retry budget')
    .argument('<task-id>')
    .option('--step <name>', 'retry from this failed step (it must be the only failed one)')
    .action(async (id: string, opts: { step?: string }) => {
      const r = await control(loadConfig(), id, 'retry', { step: opts.step });
      out(`task ${id} running again (${r.enqueued} step${r.enqueued === 1 ? '' : 's'} ready now)`);
    });
}
