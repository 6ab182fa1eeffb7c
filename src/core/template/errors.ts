import { WeftError } from '../../shared/errors.js';

/**
 * One thing wrong with a template. `message` is a complete sentence that
 * names the field path and what was found; `hint` says how to fix it.
 *
 * `path` uses dotted/bracketed form, e.g. `steps[2].depends_on[0]`; the empty
 * string means the template as a whole. `line`/`column` (1-based) are present
 * when the template came from YAML text.
 */
export interface TemplateProblem {
  path: string;
  message: string;
  hint: string;
  line?: number;
  column?: number;
  /** Set when problems of several files are aggregated (loadTemplateDir). */
  file?: string;
}

/**
 * A template failed validation. Carries every problem found in one pass;
 * the message lists them one per line:
 *
 *   template linear.yaml:12:5: steps[2].depends_on names "step_9", which is not a step of this template; steps are: a, b, c — fix: …
 *
 * @example
 *   try { parseTemplate(src, 'linear.yaml') }
 *   catch (e) { if (e instanceof TemplateError) for (const p of e.problems) console.log(p.path, p.message) }
 */
export class TemplateError extends WeftError {
  override name = 'TemplateError';
  constructor(
    readonly file: string,
    readonly problems: TemplateProblem[],
  ) {
    super('template_invalid', problems.map((p) => formatProblem(p, file)).join('\n'));
  }
}

/** `template <file>[:line:col]: <message> — fix: <hint>` */
export function formatProblem(p: TemplateProblem, file: string): string {
  const where = p.line !== undefined ? `${p.file ?? file}:${p.line}:${p.column ?? 1}` : (p.file ?? file);
  return `template ${where}: ${p.message}${p.hint ? ` — fix: ${p.hint}` : ''}`;
}
