import { Option, type Command } from 'commander';
import { loadConfig } from '../shared/config.js';
import { ValidationError } from '../shared/errors.js';
import { CATCH_UP_POLICIES, OVERLAP_POLICIES } from '../core/schedule.js';
import { controlSchedules, type ScheduleOp } from '../ops/schedule-control.js';

type Out = (s: string) => void;

interface ShownSchedule {
  name: string;
  namespace: string;
  template: string;
  version?: string | null;
  cron: string;
  timezone: string;
  paused: boolean;
  overlap: string;
  catch_up: string;
  next_firings: string[] | Date[];
}

/** One line per schedule: name, template, cron and zone, state, next firing. */
function line(s: ShownSchedule): string {
  const next = s.next_firings[0];
  const when = s.paused ? 'paused' : next ? `next ${new Date(next).toISOString()}` : 'never fires again';
  return `${s.name}  ${s.namespace}/${s.template}${s.version ? `@${s.version}` : ''}  "${s.cron}" ${s.timezone}  overlap=${s.overlap} catch_up=${s.catch_up}  ${when}`;
}

/**
 * `weft schedules create|list|pause|resume|delete`: with WEFT_ORCHESTRATOR_URL
 * through that orchestrator's API (sending WEFT_API_TOKEN), otherwise on the
 * database directly. docs/schedules.md explains the fields.
 */
export function registerScheduleCommands(program: Command, out: Out = (s) => process.stdout.write(`${s}\n`)): void {
  const schedules = program.command('schedules').description('run templates on a cron expression in a time zone (docs/schedules.md)');
  const run = async (req: ScheduleOp, json: boolean) => {
    const answer = await controlSchedules(loadConfig(), req);
    if (json) return out(JSON.stringify(answer, null, 2));
    if (req.op === 'list') {
      const all = (answer as { schedules: ShownSchedule[] }).schedules;
      out(all.length ? all.map(line).join('\n') : 'no schedules; create one with: weft schedules create NAME --template NS/NAME --cron "0 9 * * MON-FRI"');
    } else if (req.op === 'delete') out(`schedule ${req.name} deleted`);
    else out(line(answer as ShownSchedule));
  };

  schedules
    .command('create')
    .description('create a schedule: the template runs at each firing of the cron expression, with the context given')
    .argument('<name>', 'the schedule name: lower-case letters, digits, "_" or "-"')
    .requiredOption('--template <template>', 'NAMESPACE/NAME[@VERSION] (without a version: the latest at each firing)')
    .requiredOption('--cron <expr>', 'five fields (minute hour day-of-month month day-of-week), or six with seconds first')
    .option('--timezone <zone>', 'IANA time zone the cron is read in, e.g. Europe/Berlin', 'UTC')
    .option('--context <json>', 'the context every task of this schedule gets, as JSON', '{}')
    .addOption(new Option('--overlap <policy>', 'a firing while the previous task still runs').choices(OVERLAP_POLICIES).default('skip'))
    .addOption(new Option('--catch-up <policy>', 'firings missed while no orchestrator ran').choices(CATCH_UP_POLICIES).default('last'))
    .option('--paused', 'create it paused (weft schedules resume NAME starts it)', false)
    .option('--json', 'print the schedule as JSON', false)
    .action(
      async (
        name: string,
        o: { template: string; cron: string; timezone: string; context: string; overlap: string; catchUp: string; paused: boolean; json: boolean },
      ) => {
        let context: unknown;
        try {
          context = JSON.parse(o.context);
        } catch (err) {
          throw new ValidationError(`--context is not JSON (${(err as Error).message}); e.g. --context '{"report": "daily"}'`, 'context');
        }
        const input = { name, template: o.template, cron: o.cron, timezone: o.timezone, context, overlap: o.overlap, catch_up: o.catchUp, paused: o.paused };
        await run({ op: 'create', input }, o.json);
      },
    );

  schedules
    .command('list')
    .description('every schedule with its next firing')
    .option('--json', 'print JSON, with the next five firings of each', false)
    .action(async (o: { json: boolean }) => run({ op: 'list' }, o.json));

  for (const [op, what] of [
    ['pause', 'stop firing until resumed'],
    ['resume', 'fire again from now on (the firings of the pause are not caught up)'],
    ['delete', 'delete the schedule (its audit rows stay)'],
  ] as const) {
    schedules
      .command(op)
      .description(what)
      .argument('<name>')
      .option('--json', 'print JSON', false)
      .action(async (name: string, o: { json: boolean }) => run({ op, name }, o.json));
  }
}
