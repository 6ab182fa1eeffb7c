import { expect } from 'vitest';
import { parseTemplate } from '../../src/core/template/parse.js';
import { TemplateError, type TemplateProblem } from '../../src/core/template/errors.js';

/** The problems parseTemplate reports for `src`; fails the test when it accepts it. */
export function templateProblems(src: string): TemplateProblem[] {
  try {
    parseTemplate(src, 't.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateError);
    return (err as TemplateError).problems;
  }
  throw new Error('expected the template to be refused');
}
