/**
 * Reading template files. The only I/O in core/template: parsing and
 * validation stay pure in parse.ts.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TemplateError, type TemplateProblem } from './errors.js';
import { parseTemplate } from './parse.js';
import { callCycleProblems } from './calls.js';
import { templateKey, type TemplateDefinition } from './types.js';

/**
 * Read and validate one template file. Throws `TemplateError` (also when the
 * file cannot be read).
 *
 * @example
 *   const def = await loadTemplateFile('templates/linear.yaml');
 */
export async function loadTemplateFile(path: string): Promise<TemplateDefinition> {
  let source: string;
  try {
    source = await readFile(path, 'utf8');
  } catch (err) {
    throw new TemplateError(path, [
      {
        path: '',
        message: `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        hint: 'check the path and that the file is readable',
      },
    ]);
  }
  return parseTemplate(source, path);
}

/** Every `*.yaml` / `*.yml` under `dir`, recursively, sorted by path. */
export async function listTemplateFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && /\.ya?ml$/i.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/**
 * Read and validate every template under `dir`. Throws one `TemplateError`
 * aggregating the problems of all files (each problem's `file` is set), or
 * when two files define the same namespace/name@version, or when templates
 * run each other as child workflows in a cycle.
 *
 * @example
 *   const defs = await loadTemplateDir('templates');
 */
export async function loadTemplateDir(dir: string): Promise<TemplateDefinition[]> {
  const files = await listTemplateFiles(dir);
  const defs: { file: string; def: TemplateDefinition }[] = [];
  const problems: TemplateProblem[] = [];
  for (const file of files) {
    try {
      defs.push({ file, def: await loadTemplateFile(file) });
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      problems.push(...err.problems.map((p) => ({ ...p, file: p.file ?? file })));
    }
  }
  problems.push(...duplicateKeyProblems(defs), ...callCycleProblems(defs));
  if (problems.length > 0) throw new TemplateError(dir, problems);
  return defs.map((d) => d.def);
}

/** Two files defining the same `namespace/name@version` would shadow each other. */
export function duplicateKeyProblems(defs: readonly { file: string; def: TemplateDefinition }[]): TemplateProblem[] {
  const seen = new Map<string, string>();
  const out: TemplateProblem[] = [];
  for (const { file, def } of defs) {
    const key = templateKey(def);
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, file);
      continue;
    }
    out.push({
      file,
      path: '',
      message: `${key} is also defined by ${first}; a namespace/name@version may be defined once`,
      hint: 'change the namespace, name or version of one of the two files',
    });
  }
  return out;
}
