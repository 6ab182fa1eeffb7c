/**
 * What every `weft` command shares about its output: `--json` (a command's
 * result, or its error, as one JSON document on stdout) and the one-line
 * hint after a usage error (instead of the whole help).
 */
import { CommanderError, type Command } from 'commander';
import { WeftApiError } from '../client/errors.js';
import { WeftError } from '../shared/errors.js';

/** Whether this command line asks for JSON (`--json` before any `--`). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * An error as `--json` prints it: `{ "error": { "code", "message", … } }`,
 * the shape the API answers with; an API error keeps its `status` and every
 * field the server sent, a usage error its commander code.
 */
export function errorDocument(err: unknown): { error: Record<string, unknown> } {
  if (err instanceof WeftApiError) return { error: { ...err.body, code: err.code, message: err.message, status: err.status } };
  if (err instanceof CommanderError) return { error: { code: 'usage', message: err.message.replace(/^error: /, ''), usage_code: err.code } };
  if (err instanceof WeftError) {
    const { path, details } = err as WeftError & { path?: string; details?: unknown };
    return { error: { code: err.code, message: err.message, ...(path ? { path } : {}), ...(Array.isArray(details) && details.length ? { details } : {}) } };
  }
  return { error: { code: 'internal', message: (err as Error)?.message ?? String(err) } };
}

function* commandsOf(command: Command): Generator<Command> {
  yield command;
  for (const sub of command.commands) yield* commandsOf(sub);
}

function pathOf(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * Give every command that does not print JSON of its own a `--json` that at
 * least makes its errors JSON (long-running commands such as `orchestrator`
 * log as JSON lines whenever stderr is not a terminal).
 */
export function addJsonEverywhere(program: Command): void {
  for (const c of commandsOf(program)) {
    if (c === program || c.commands.length > 0) continue;
    if (c.options.some((o) => o.long === '--json')) continue;
    c.option('--json', 'print an error as one JSON document on stdout', false);
  }
}

/** After a usage error (unknown option, missing argument), one line naming where the usage is, not the whole help. */
export function hintAfterErrors(program: Command): void {
  for (const c of commandsOf(program)) {
    const path = pathOf(c);
    c.showHelpAfterError(path ? `hint: \`weft ${path} --help\` lists its arguments and options` : 'hint: `weft --help` lists the commands');
  }
}
