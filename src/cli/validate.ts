/**
 * `weft validate FILE|DIR...`: check templates without storing anything.
 * Wired into the commander CLI by src/cli/main.ts.
 */
import { stat } from 'node:fs/promises';
import { formatProblem, TemplateError } from '../core/template/errors.js';
import { duplicateKeyProblems, listTemplateFiles, loadTemplateFile } from '../core/template/load.js';
import { templateKey, type TemplateDefinition } from '../core/template/types.js';

export interface ValidateIO {
  out: (s: string) => void;
  err: (s: string) => void;
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
      io.err(`weft validate: ${arg} does not exist; give the path of a template file or a directory of templates`);
      missing = true;
      continue;
    }
    const targets = isDir ? await listTemplateFiles(arg) : [arg];
    if (isDir && targets.length === 0) {
      io.err(`weft validate: ${arg} holds no .yaml or .yml files`);
      invalid = true;
    }
    for (const file of targets) {
      try {
        const def = await loadTemplateFile(file);
        good.push({ file, def });
        io.out(`ok  ${file}  ${templateKey(def)} (${def.steps.length} step${def.steps.length === 1 ? '' : 's'})`);
      } catch (err) {
        if (!(err instanceof TemplateError)) throw err;
        invalid = true;
        for (const p of err.problems) io.err(formatProblem(p, file));
      }
    }
  }
  for (const p of duplicateKeyProblems(good)) {
    invalid = true;
    io.err(formatProblem(p, p.file ?? ''));
  }
  if (missing) return 2;
  return invalid ? 1 : 0;
}
