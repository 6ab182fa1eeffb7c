import { readFile, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { loadConfig } from '../shared/config.js';
import { ValidationError, WeftError } from '../shared/errors.js';
import { TemplateError, type TemplateProblem } from '../core/template/errors.js';
import { parseTemplate } from '../core/template/parse.js';
import { duplicateKeyProblems, listTemplateFiles } from '../core/template/load.js';
import type { TemplateDefinition } from '../core/template/types.js';
import { openTaskSource } from './task-source.js';

type Out = (s: string) => void;

interface Pushed {
  file: string;
  namespace: string;
  name: string;
  version: string;
  outcome?: 'created' | 'unchanged';
  error?: { code: string; message: string };
}

/** Every template file of `path` (a directory, searched recursively, or one file), read and validated: nothing is sent unless all are good. */
async function readTemplates(path: string): Promise<Array<{ file: string; text: string; def: TemplateDefinition }>> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new ValidationError(`${path} does not exist; give a directory of template files (*.yaml) or one file`, 'dir');
  const files = info.isDirectory() ? await listTemplateFiles(path) : [path];
  if (files.length === 0) throw new ValidationError(`${path} holds no template files (*.yaml, *.yml); \`weft validate\` checks what is there`, 'dir');
  const read: Array<{ file: string; text: string; def: TemplateDefinition }> = [];
  const problems: TemplateProblem[] = [];
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    try {
      read.push({ file, text, def: parseTemplate(text, file) });
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      problems.push(...err.problems.map((p) => ({ ...p, file: p.file ?? file })));
    }
  }
  problems.push(...duplicateKeyProblems(read));
  if (problems.length > 0) throw new TemplateError(path, problems);
  return read;
}

/**
 * `weft templates push DIR`: register every template of DIR with the
 * orchestrator at WEFT_ORCHESTRATOR_URL (an admin token in WEFT_API_TOKEN
 * once tokens exist), or, without one, in the database directly. All files
 * are validated first; none is sent while any has a problem.
 */
export function registerTemplatesCommand(program: Command, out: Out = (s) => process.stdout.write(`${s}\n`)): void {
  const templates = program.command('templates').description('register templates with an orchestrator (or the database)');
  templates
    .command('push')
    .description('validate every template under DIR, then register each (created, unchanged, or why not); exit 1 if any failed')
    .argument('<dir>', 'a directory of template files (searched recursively) or one file')
    .option('--json', 'print { ok, where, templates: [{ file, namespace, name, version, outcome | error }] }', false)
    .action(async (dir: string, opts: { json: boolean }) => {
      const files = await readTemplates(dir);
      const source = await openTaskSource(loadConfig(), 'templates-push');
      const pushed: Pushed[] = [];
      try {
        for (const { file, text, def } of files) {
          const entry: Pushed = { file, namespace: def.namespace, name: def.name, version: def.version };
          try {
            entry.outcome = (await source.register(text, def)).outcome;
          } catch (err) {
            // An answer about this template (409 changed under the same version, 400): report it and go on.
            if (!(err instanceof WeftError) || err.code === 'http_unreachable' || /^token_|^forbidden$/.test(err.code)) throw err;
            entry.error = { code: err.code, message: err.message };
          }
          pushed.push(entry);
        }
      } finally {
        await source.close();
      }
      const ok = pushed.every((p) => !p.error);
      if (opts.json) {
        out(JSON.stringify({ ok, where: source.where, templates: pushed }, null, 2));
      } else {
        for (const p of pushed) out(`${`${p.namespace}/${p.name}@${p.version}`.padEnd(48)} ${p.outcome ?? `failed: ${p.error!.message}`}`);
        const created = pushed.filter((p) => p.outcome === 'created').length;
        out(
          `${created} created, ${pushed.filter((p) => p.outcome === 'unchanged').length} unchanged, ${pushed.length - created - pushed.filter((p) => p.outcome === 'unchanged').length} failed, at ${source.where}`,
        );
      }
      process.exitCode = ok ? 0 : 1;
    });
}
