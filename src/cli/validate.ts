/**
 * `weft validate FILE|DIR...`: check templates without storing anything.
 * Wired into the commander CLI by src/cli/main.ts.
 */
import { stat } from 'node:fs/promises';
import { formatProblem, TemplateError, type TemplateProblem } from '../core/template/errors.js';
import { duplicateKeyProblems, listTemplateFiles, loadTemplateFile } from '../core/template/load.js';
import { callCycleProblems } from '../core/template/calls.js';
import { templateKey, type TemplateDefinition } from '../core/template/types.js';

export interface ValidateIO {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Print one JSON document on `out` instead of lines: `{ ok, templates, problems }`. */
  json?: boolean;
}

/** What `weft validate --json` prints. */
export interface ValidateReport {
  ok: boolean;
  templates: Array<{ file: string; template: string; steps: number }>;
  problems: Array<{ file: string; path: string; line?: number; column?: number; message: string; hint: string }>;
}

/**
 * Validate each file, or every *.yaml / *.yml under each directory.
 * Prints `ok  <file>  <namespace>/<name>@<version> (<n> steps)` for each good
 * template and every problem of each bad one.
 *
 * Returns the exit code: 0 all valid, 1 some template invalid (or a directory
 * holds no templates), 2 a path does not exist or no path was given.
 *
 * @example
 *   process.exitCode = await runValidate(['templates'], { out: console.log, err: console.error });
 */
export async function runValidate(files: string[], io: ValidateIO): Promise<number> {
  if (!io.json) return validate(files, io);
  const report: ValidateReport = { ok: true, templates: [], problems: [] };
  const code = await validate(files, {
    out: () => undefined,
    err: () => undefined,
    onTemplate: (file, def) => report.templates.push({ file, template: templateKey(def), steps: def.steps.length }),
    onProblem: (file, p) => report.problems.push({ file, path: p.path, line: p.line, column: p.column, message: p.message, hint: p.hint }),
  });
  report.ok = code === 0;
  io.out(JSON.stringify(report, null, 2));
  return code;
}

interface Collector extends ValidateIO {
  onTemplate?: (file: string, def: TemplateDefinition) => void;
  onProblem?: (file: string, problem: TemplateProblem) => void;
}

async function validate(files: string[], io: Collector): Promise<number> {
  if (files.length === 0) {
    io.err('weft validate: no template given; usage: weft validate FILE|DIR...');
    return 2;
  }
  let missing = false;
  let invalid = false;
  const good: { file: string; def: TemplateDefinition }[] = [];
  for (const arg of files) {
    let isDir: boolean;
    try {
      isDir = (await stat(arg)).isDirectory();
    } catch {
      const message = `${arg} does not exist; give the path of a template file or a directory of templates`;
      io.err(`weft validate: ${message}`);
      io.onProblem?.(arg, { path: '', message, hint: '' });
      missing = true;
      continue;
    }
    const targets = isDir ? await listTemplateFiles(arg) : [arg];
    if (isDir && targets.length === 0) {
      io.err(`weft validate: ${arg} holds no .yaml or .yml files`);
      io.onProblem?.(arg, { path: '', message: `${arg} holds no .yaml or .yml files`, hint: 'give a directory with template files' });
      invalid = true;
    }
    for (const file of targets) {
      try {
        const def = await loadTemplateFile(file);
        good.push({ file, def });
        io.onTemplate?.(file, def);
        io.out(`ok  ${file}  ${templateKey(def)} (${def.steps.length} step${def.steps.length === 1 ? '' : 's'})`);
      } catch (err) {
        if (!(err instanceof TemplateError)) throw err;
        invalid = true;
        for (const p of err.problems) {
          io.err(formatProblem(p, file));
          io.onProblem?.(file, p);
        }
      }
    }
  }
  for (const p of [...duplicateKeyProblems(good), ...callCycleProblems(good)]) {
    invalid = true;
    io.err(formatProblem(p, p.file ?? ''));
    io.onProblem?.(p.file ?? '', p);
  }
  if (missing) return 2;
  return invalid ? 1 : 0;
}
