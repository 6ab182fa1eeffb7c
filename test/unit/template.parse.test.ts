import { describe, expect, it } from 'vitest';
import { TemplateError, type TemplateProblem } from '../../src/core/template/errors.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { WeftError } from '../../src/shared/errors.js';

const HEAD = 'namespace: demo\nname: flow\nversion: 1.0.0\n';

/** Parse `src`, expect a TemplateError, return its problems. */
function problemsOf(src: string, file = 't.yaml'): { err: TemplateError; problems: TemplateProblem[] } {
  try {
    parseTemplate(src, file);
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateError);
    expect(err).toBeInstanceOf(WeftError);
    const e = err as TemplateError;
    expect(e.name).toBe('TemplateError');
    expect(e.code).toBe('template_invalid');
    expect(e.file).toBe(file);
    return { err: e, problems: e.problems };
  }
  throw new Error('expected parseTemplate to throw a TemplateError');
}

function only(src: string): TemplateProblem {
  const { problems } = problemsOf(src);
  expect(problems.map((p) => p.message)).toHaveLength(1);
  return problems[0]!;
}

describe('parseTemplate: YAML and top level', () => {
  it('reports a YAML syntax error with line and column', () => {
    const { err, problems } = problemsOf('namespace: demo\nsteps: [a, b\nname: x\n', 'linear.yaml');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ path: '', line: 3, column: 1 });
    expect(problems[0]!.message).toMatch(/^YAML syntax error: Flow sequence .* end with a \]$/);
    expect(problems[0]!.hint).toMatch(/indentation/);
    expect(err.message).toMatch(/^template linear\.yaml:3:1: YAML syntax error: /);
  });

  it('reports tabs used as indentation', () => {
    const p = problemsOf('namespace: demo\nsteps:\n\t- name: a\n').problems[0]!;
    expect(p.message).toMatch(/YAML syntax error: Tabs are not allowed/);
    expect(p).toMatchObject({ line: 3, column: 1 });
    expect(p.hint).toMatch(/spaces/);
  });

  it('reports a key given twice', () => {
    const p = problemsOf(`${HEAD}name: again\nsteps: [{ name: a, handler: h }]\n`).problems[0]!;
    expect(p.message).toMatch(/YAML syntax error: Map keys must be unique/);
    expect(p.line).toBe(4);
    expect(p.hint).toMatch(/repeated keys/);
  });

  it('reports an unclosed quote and a second YAML document, with hints', () => {
    const q = problemsOf('namespace: demo\nname: "flow\n').problems[0]!;
    expect(q.message).toBe('YAML syntax error: Missing closing "quote');
    expect(q.hint).toBe('check the indentation and that every [, { and quote is closed');
    const d = problemsOf('namespace: demo\n---\nname: flow\n').problems[0]!;
    expect(d).toMatchObject({ line: 2, column: 1 });
    expect(d.hint).toBe('a template file holds one YAML document: remove the extra "---" or split the file');
    const k = problemsOf('namespace: demo\nname: a: b\n').problems[0]!;
    expect(k.hint).toBe('write one "key: value" per line; quote a value that contains ": "');
  });

  it('refuses aliases that expand into a huge document', () => {
    const bomb = ['a: &a [1,1,1,1,1,1,1,1,1,1]'];
    for (const [x, y] of [
      ['b', 'a'],
      ['c', 'b'],
      ['d', 'c'],
    ])
      bomb.push(`${x}: &${x} [${Array(10).fill(`*${y}`).join(',')}]`);
    bomb.push(`e: [${Array(10).fill('*d').join(',')}]`);
    const p = only(`${bomb.join('\n')}\n`);
    expect(p.message).toBe('YAML could not be read: Excessive alias count indicates a resource exhaustion attack');
    expect(p.hint).toMatch(/remove the aliases/);
  });

  it('rejects an empty file', () => {
    const p = only('# nothing here\n');
    expect(p.path).toBe('');
    expect(p.message).toBe('the template is empty; expected a mapping with namespace, name, version and steps');
  });

  it('rejects a file that is not a mapping', () => {
    const p = only('- name: a\n  handler: h\n');
    expect(p.message).toBe('the template is a list; expected a mapping with namespace, name, version and steps');
    expect(p).toMatchObject({ line: 1, column: 1 });
    const s = only('just text\n');
    expect(s.message).toMatch(/^the template is a string \("just text"\)/);
  });

  it('lists the problem lines in the error message, one per line, in file order', () => {
    const { err } = problemsOf('namespace: Demo\nname: flow\nversion: 1.0\nsteps: []\n', 'bad.yaml');
    const lines = err.message.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^template bad\.yaml:1:12: namespace "Demo" is not a valid name; .* — fix: rename it, e\.g\. "demo"$/);
    expect(lines[1]).toMatch(/^template bad\.yaml:3:10: version 1\.0 is not a semantic version/);
    expect(lines[2]).toMatch(/^template bad\.yaml:4:8: steps is an empty list; a template needs at least one step/);
  });
});

describe('parseTemplate: fields', () => {
  it('suggests the closest known name for an unknown step field', () => {
    const p = only(`${HEAD}steps:\n  - name: a\n    handler: h\n  - name: b\n    handler: h\n    depend_on: [a]\n`);
    expect(p.path).toBe('steps[1].depend_on');
    expect(p.message).toBe('unknown field "depend_on" in steps[1]; did you mean "depends_on"?');
    expect(p.hint).toBe('rename it to "depends_on"');
    expect(p).toMatchObject({ line: 9, column: 5 });
  });

  it('reports an unknown top-level field with a suggestion, and lists the fields when nothing is close', () => {
    const { problems } = problemsOf(`${HEAD}runtim: python\nzzzzzzzzz: 1\nsteps: [{ name: a, handler: h }]\n`);
    expect(problems[0]).toMatchObject({ path: 'runtim', line: 4, column: 1 });
    expect(problems[0]!.message).toBe('unknown field "runtim" at the top level; did you mean "runtime"?');
    expect(problems[1]!.message).toBe('unknown field "zzzzzzzzz" at the top level');
    expect(problems[1]!.hint).toMatch(
      /^remove it; the fields allowed at the top level are: namespace, name, version, description, runtime, input_schema, steps, schedules$/,
    );
  });

  it('reports unknown fields in retry and batch', () => {
    const { problems } = problemsOf(
      `${HEAD}steps:\n  - name: a\n    handler: h\n    type: batchable\n    retry: { max_attempt: 2 }\n    batch: { worker_templat: w }\n  - name: w\n    handler: h\n    type: batch_worker\n`,
    );
    const msgs = problems.map((p) => `${p.path}: ${p.message}`);
    expect(msgs).toContain('steps[0].retry.max_attempt: unknown field "max_attempt" in steps[0].retry; did you mean "max_attempts"?');
    expect(msgs).toContain('steps[0].batch.worker_templat: unknown field "worker_templat" in steps[0].batch; did you mean "worker_template"?');
    expect(msgs).toContain('steps[0].batch: steps[0].batch is missing the required field "worker_template"');
  });

  it('reports each missing required top-level field', () => {
    const { problems } = problemsOf('description: nothing else\n');
    expect(problems.map((p) => p.message)).toEqual([
      'the template is missing the required field "namespace"',
      'the template is missing the required field "name"',
      'the template is missing the required field "version"',
      'the template is missing the required field "steps"',
    ]);
    expect(problems[2]!.hint).toBe('add version: 1.0.0');
  });

  it('reports a step without name or handler, naming the step when it can', () => {
    const { problems } = problemsOf(`${HEAD}steps:\n  - name: a\n  - handler: h\n`);
    expect(problems[0]).toMatchObject({ path: 'steps[0]', message: 'steps[0] ("a") is missing the required field "handler"', line: 5, column: 5 });
    expect(problems[0]!.hint).toMatch(/handler: linear\.square/);
    expect(problems[1]).toMatchObject({ path: 'steps[1]', message: 'steps[1] is missing the required field "name"', line: 6 });
  });

  it('rejects bad names and suggests a valid one', () => {
    const { problems } = problemsOf(`namespace: My-Space\nname: 9lives\nversion: 1.0.0\nsteps: [{ name: stepOne, handler: h }]\n`);
    expect(problems.map((p) => p.path)).toEqual(['namespace', 'name', 'steps[0].name']);
    expect(problems[0]!.message).toBe(
      'namespace "My-Space" is not a valid name; names must match [a-z][a-z0-9_]* (a lowercase letter, then lowercase letters, digits or underscores)',
    );
    expect(problems[0]!.hint).toBe('rename it, e.g. "my_space"');
    expect(problems[1]!.hint).toBe('rename it, e.g. "lives"');
    expect(problems[2]!.hint).toBe('rename it, e.g. "step_one"');
  });

  it('rejects a handler key that is empty or has spaces', () => {
    const p = only(`${HEAD}steps: [{ name: a, handler: "linear square" }]\n`);
    expect(p.path).toBe('steps[0].handler');
    expect(p.message).toBe('steps[0].handler is "linear square"; a handler key cannot be empty or contain spaces');
  });

  it('explains a version YAML read as a number, quoting the source text', () => {
    const p = only('namespace: demo\nname: flow\nversion: 1.0\nsteps: [{ name: a, handler: h }]\n');
    expect(p).toMatchObject({ path: 'version', line: 3, column: 10 });
    expect(p.message).toBe('version 1.0 is not a semantic version; it must look like 1.0.0 (major.minor.patch)');
    expect(p.hint).toBe('write version: 1.0.0');
  });

  it('rejects a version string that is not semver', () => {
    const p = only('namespace: demo\nname: flow\nversion: "v2.1"\nsteps: [{ name: a, handler: h }]\n');
    expect(p.message).toBe('version "v2.1" is not a semantic version; it must look like 1.0.0 (major.minor.patch)');
    expect(p.hint).toBe('write version: 2.1.0');
    const q = only('namespace: demo\nname: flow\nversion: [1]\nsteps: [{ name: a, handler: h }]\n');
    expect(q.message).toBe('version is a list; expected a semantic version such as 1.0.0');
  });

  it('rejects an unknown runtime and an unknown step type, listing the allowed values', () => {
    const { problems } = problemsOf(`${HEAD}runtime: jvm\nsteps: [{ name: a, handler: h, type: desicion }]\n`);
    expect(problems[0]).toMatchObject({
      path: 'runtime',
      message: 'runtime is "jvm", which is not a known runtime; allowed: native, typescript, python, ruby',
    });
    expect(problems[0]!.hint).toBe('use one of: native, typescript, python, ruby');
    expect(problems[1]!.path).toBe('steps[0].type');
    expect(problems[1]!.message).toBe(
      'steps[0].type is "desicion", which is not a known step type; allowed: standard, decision, deferred_convergence, batchable, batch_worker, sleep, wait, workflow; did you mean "decision"?',
    );
  });

  it('rejects an unknown backoff kind', () => {
    const p = only(`${HEAD}steps: [{ name: a, handler: h, retry: { backoff: random } }]\n`);
    expect(p.path).toBe('steps[0].retry.backoff');
    expect(p.message).toBe('steps[0].retry.backoff is "random", which is not a known backoff kind; allowed: exponential, linear, fixed');
  });

  it('rejects an empty step list', () => {
    const p = only(`${HEAD}steps: []\n`);
    expect(p).toMatchObject({ path: 'steps', message: 'steps is an empty list; a template needs at least one step' });
  });

  it('rejects wrong types: a string for a list, a list for a mapping, a quoted number', () => {
    const { problems } = problemsOf(
      `${HEAD}steps:\n  - name: a\n    handler: h\n  - name: b\n    handler: h\n    depends_on: a\n    inputs: [1, 2]\n    timeout_ms: "1000"\n  - just_a_string\n`,
    );
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p]));
    expect(byPath['steps[1].depends_on']!.message).toBe('steps[1].depends_on is a string ("a"); expected a list');
    expect(byPath['steps[1].depends_on']!.hint).toBe('write a list of step names: depends_on: [a]');
    expect(byPath['steps[1].inputs']!.message).toBe('steps[1].inputs is a list; expected a mapping (key: value lines)');
    expect(byPath['steps[1].timeout_ms']!.message).toBe('steps[1].timeout_ms is a string ("1000"); expected a whole number');
    expect(byPath['steps[2]']!.message).toBe('steps[2] is a string ("just_a_string"); expected a mapping (key: value lines)');
    expect(problems).toHaveLength(4);
  });

  it('rejects more steps than the limit', () => {
    const steps = Array.from({ length: 1001 }, (_, i) => `  - { name: s${i}, handler: h }`).join('\n');
    const p = only(`${HEAD}steps:\n${steps}\n`);
    expect(p).toMatchObject({ path: 'steps', message: 'steps has 1001 steps; at most 1000 are allowed', hint: 'split the workflow into several templates' });
  });

  it('rejects steps that is not a list and an empty (null) depends_on', () => {
    const { problems } = problemsOf(`${HEAD}steps:\n  name: a\n`);
    expect(problems[0]!.message).toBe('steps is a mapping; expected a list');
    expect(problems[0]!.hint).toMatch(/each step starts with "- name:/);
    const p = only(`${HEAD}steps:\n  - name: a\n    handler: h\n    depends_on:\n`);
    expect(p.message).toBe('steps[0].depends_on is empty; expected a list');
  });

  it('rejects a fractional number where a whole number is needed', () => {
    const p = only(`${HEAD}steps: [{ name: a, handler: h, retry: { max_attempts: 2.5 } }]\n`);
    expect(p.message).toBe('steps[0].retry.max_attempts is the number 2.5 (not a whole number); expected a whole number');
  });

  it('rejects retry, timeout and batch values out of range', () => {
    const { problems } = problemsOf(
      `${HEAD}steps:\n  - name: a\n    handler: h\n    type: batchable\n    retry: { max_attempts: 101, base_ms: -1, max_ms: 90000000 }\n    timeout_ms: 0\n    batch: { worker_template: w, batch_size: 0, max_workers: 1001 }\n  - name: w\n    handler: h\n    type: batch_worker\n    depends_on: [a]\n`,
    );
    const msgs = problems.map((p) => p.message);
    expect(msgs).toEqual([
      'steps[0].retry.max_attempts is 101, out of range; it must be between 1 and 100',
      'steps[0].retry.base_ms is -1, out of range; it must be between 0 and 3600000',
      'steps[0].retry.max_ms is 90000000, out of range; it must be between 0 and 86400000',
      'steps[0].timeout_ms is 0, out of range; it must be between 1 and 86400000',
      'steps[0].batch.batch_size is 0, out of range; it must be between 1 and 1000000',
      'steps[0].batch.max_workers is 1001, out of range; it must be between 1 and 1000',
    ]);
    expect(problems[3]).toMatchObject({ path: 'steps[0].timeout_ms', line: 9, column: 17 });
    expect(problems[3]!.hint).toBe('set timeout_ms to a value between 1 and 86400000');
  });

  it('rejects base_ms greater than max_ms, including a defaulted max_ms', () => {
    const { problems } = problemsOf(
      `${HEAD}steps:\n  - name: a\n    handler: h\n    retry: { base_ms: 500, max_ms: 100 }\n  - name: b\n    handler: h\n    retry: { base_ms: 20000 }\n`,
    );
    expect(problems.map((p) => p.message)).toEqual([
      'steps[0].retry.base_ms is 500, greater than max_ms 100; the first delay would exceed the largest delay allowed',
      'steps[1].retry.base_ms is 20000, greater than max_ms 10000 (max_ms defaults to 10000); the first delay would exceed the largest delay allowed',
    ]);
    expect(problems[0]!.path).toBe('steps[0].retry.base_ms');
  });

  it('rejects an inputs field that is not a mapping and an input_schema that is not a mapping', () => {
    const { problems } = problemsOf(`${HEAD}input_schema: integer\nsteps: [{ name: a, handler: h, inputs: 5 }]\n`);
    expect(problems.map((p) => p.message)).toEqual([
      'input_schema is a string ("integer"); expected a mapping (key: value lines)',
      'steps[0].inputs is the number 5; expected a mapping (key: value lines)',
    ]);
  });

  it('rejects an input_schema that is not a valid JSON Schema', () => {
    const p = only(`${HEAD}input_schema:\n  type: object\n  properties:\n    n: { type: integr }\nsteps: [{ name: a, handler: h }]\n`);
    expect(p.path).toBe('input_schema.properties.n.type');
    expect(p.message).toMatch(
      /^input_schema is not a valid JSON Schema: input_schema\.properties\.n\.type is a string \("integr"\) and must be equal to one of the allowed values/,
    );
    expect(p).toMatchObject({ line: 7, column: 16 });
    const q = only(`${HEAD}input_schema: { required: 5 }\nsteps: [{ name: a, handler: h }]\n`);
    expect(q.path).toBe('input_schema.required');
    expect(q.message).toMatch(/input_schema\.required is the number 5 and must be array/);
  });

  it('rejects an input_schema written for a draft weft does not support', () => {
    const p = only(`${HEAD}input_schema: { $schema: "https://json-schema.org/draft/2020-12/schema", type: object }\nsteps: [{ name: a, handler: h }]\n`);
    expect(p).toMatchObject({ path: 'input_schema.$schema', line: 4, column: 26 });
    expect(p.message).toBe(
      'input_schema cannot be checked: no schema with key or ref "https://json-schema.org/draft/2020-12/schema"; weft supports JSON Schema draft-07',
    );
  });

  it('rejects an input_schema whose $ref points nowhere', () => {
    const p = only(`${HEAD}input_schema: { $ref: "#/definitions/missing" }\nsteps: [{ name: a, handler: h }]\n`);
    expect(p.path).toBe('input_schema');
    expect(p.message).toMatch(/^input_schema is not a valid JSON Schema: can't resolve reference #\/definitions\/missing/);
  });
});

describe('parseTemplate: the step graph', () => {
  const abc = (extra: string) =>
    `${HEAD}steps:\n  - name: a\n    handler: h\n  - name: b\n    handler: h\n    depends_on: [a]\n  - name: c\n    handler: h\n${extra}`;

  it('rejects a dependency on an unknown step, listing the steps', () => {
    const { err, problems } = problemsOf(abc('    depends_on: [b, step_9]\n'), 'linear.yaml');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ path: 'steps[2].depends_on[1]', line: 12, column: 21 });
    expect(problems[0]!.message).toBe('steps[2].depends_on names "step_9", which is not a step of this template; steps are: a, b, c');
    expect(err.message).toBe(
      'template linear.yaml:12:21: steps[2].depends_on names "step_9", which is not a step of this template; steps are: a, b, c — fix: add a step named "step_9" or remove it from depends_on',
    );
  });

  it('suggests a step with a similar name for a mistyped dependency', () => {
    const p = only(abc('    depends_on: [bb]\n'));
    expect(p.hint).toBe('did you mean "b"? change it to "b"');
  });

  it('rejects a step that depends on itself', () => {
    const p = only(abc('    depends_on: [c]\n'));
    expect(p).toMatchObject({ path: 'steps[2].depends_on[0]', message: 'steps[2].depends_on names the step itself ("c"); a step cannot wait for itself' });
    expect(p.hint).toBe('remove "c" from its own depends_on');
  });

  it('rejects a dependency listed twice', () => {
    const p = only(abc('    depends_on: [a, a]\n'));
    expect(p.path).toBe('steps[2].depends_on[1]');
    expect(p.message).toBe('steps[2].depends_on lists "a" more than once');
  });

  it('prints a cycle in run order', () => {
    const src = `${HEAD}steps:\n  - name: a\n    handler: h\n    depends_on: [c]\n  - name: b\n    handler: h\n    depends_on: [a]\n  - name: c\n    handler: h\n    depends_on: [b]\n`;
    const p = only(src);
    expect(p.message).toMatch(/^steps form a dependency cycle: (a → b → c → a|b → c → a → b|c → a → b → c); none of these steps could ever start$/);
    expect(p.hint).toMatch(/^remove one of these dependencies: /);
    expect(p.path).toMatch(/^steps\[\d\]\.depends_on$/);
  });

  it('reports two independent cycles', () => {
    const src = `${HEAD}steps:\n  - { name: a, handler: h, depends_on: [b] }\n  - { name: b, handler: h, depends_on: [a] }\n  - { name: x, handler: h, depends_on: [y] }\n  - { name: y, handler: h, depends_on: [x] }\n`;
    const { problems } = problemsOf(src);
    expect(problems.map((p) => p.message.replace(/;.*/, '')).sort()).toEqual([
      expect.stringMatching(/^steps form a dependency cycle: (a → b → a|b → a → b)$/),
      expect.stringMatching(/^steps form a dependency cycle: (x → y → x|y → x → y)$/),
    ]);
  });

  it('rejects duplicate step names', () => {
    const p = only(abc('  - name: b\n    handler: h\n'));
    expect(p).toMatchObject({ path: 'steps[3].name', line: 12, column: 11 });
    expect(p.message).toBe('steps[3].name "b" is already the name of steps[1]; step names must be unique within a template');
  });

  it('rejects a deferred_convergence step with no dependencies', () => {
    const p = only(abc('    type: deferred_convergence\n'));
    expect(p).toMatchObject({
      path: 'steps[2]',
      message: 'steps[2] ("c") is a deferred_convergence step with no dependencies; it would have nothing to wait for',
    });
    const q = only(abc('    type: deferred_convergence\n    depends_on: []\n'));
    expect(q.path).toBe('steps[2].depends_on');
  });
});

describe('parseTemplate: batches', () => {
  const base = `${HEAD}steps:\n  - name: analyze\n    handler: h\n`;

  it('rejects a batchable step without a batch section', () => {
    const p = only(`${base}    type: batchable\n  - name: work\n    handler: h\n    type: batch_worker\n    depends_on: [analyze]\n`);
    expect(p.message).toBe('steps[0] ("analyze") is batchable but has no batch section; weft would not know which batch_worker step to create');
    expect(p.hint).toMatch(/^add batch: \{ worker_template: /);
    // The worker is not also reported as unnamed: fixing the batch section fixes both.
  });

  it('rejects a worker_template that names no step', () => {
    const { problems } = problemsOf(`${base}    type: batchable\n    batch: { worker_template: nowhere }\n`);
    expect(problems[0]).toMatchObject({ path: 'steps[0].batch.worker_template' });
    expect(problems[0]!.message).toBe('steps[0].batch.worker_template names "nowhere", which is not a step of this template; batch_worker steps are: (none)');
    expect(problems[0]!.hint).toBe('add a step named "nowhere" with type: batch_worker');
  });

  it('rejects a worker_template that is not a batch_worker step', () => {
    const p = only(`${base}    type: batchable\n    batch: { worker_template: work }\n  - name: work\n    handler: h\n    depends_on: [analyze]\n`);
    expect(p.message).toBe('steps[0].batch.worker_template names "work", which is a standard step, not a batch_worker step');
    expect(p.hint).toBe('set type: batch_worker on step "work", or name a batch_worker step');
  });

  it('rejects a batch section on a step that is not batchable', () => {
    const p = only(`${base}    batch: { worker_template: work }\n  - name: work\n    handler: h\n    type: batch_worker\n`);
    expect(p).toMatchObject({ path: 'steps[0].batch', line: 7, column: 5 });
    expect(p.message).toBe('steps[0] ("analyze") has a batch section but its type is standard; batch is only allowed on batchable steps');
  });

  it('rejects a batch_worker step that no batchable step names', () => {
    const p = only(`${base}  - name: work\n    handler: h\n    type: batch_worker\n`);
    expect(p).toMatchObject({ path: 'steps[1].type' });
    expect(p.message).toBe('steps[1] ("work") is a batch_worker step, but no batchable step names it in batch.worker_template, so it could never run');
  });

  it('rejects two batchable steps sharing one worker', () => {
    const p = only(
      `${base}    type: batchable\n    batch: { worker_template: work }\n  - name: again\n    handler: h\n    type: batchable\n    batch: { worker_template: work }\n  - name: work\n    handler: h\n    type: batch_worker\n    depends_on: [analyze]\n`,
    );
    expect(p.path).toBe('steps[1].batch.worker_template');
    expect(p.message).toBe('steps[1].batch.worker_template names "work", which steps[0] already uses; each batch_worker step serves one batchable step');
  });
});

describe('parseTemplate: batch workers and their batchable step', () => {
  const head = `${HEAD}steps:\n  - name: analyze\n    handler: h\n    type: batchable\n    batch: { worker_template: work }\n  - name: other\n    handler: h\n`;

  it('requires a batch_worker to depend on exactly its batchable step', () => {
    const p = only(`${head}  - name: work\n    handler: h\n    type: batch_worker\n    depends_on: [analyze, other]\n`);
    expect(p).toMatchObject({ path: 'steps[2].depends_on', line: 14, column: 17 });
    expect(p.message).toBe('steps[2] ("work") is the batch_worker of "analyze", so it must depend on exactly [analyze]; found [analyze, other]');
    expect(p.hint).toBe('write depends_on: [analyze] (worker instances are created by analyze and wait only for it)');
    const q = only(`${head}  - name: work\n    handler: h\n    type: batch_worker\n`);
    expect(q.path).toBe('steps[2]');
    expect(q.message).toMatch(/must depend on exactly \[analyze\]; found \[\]$/);
  });

  it('rejects a step named like a worker instance', () => {
    const p = only(
      `${head}    depends_on: [analyze]\n  - name: work\n    handler: h\n    type: batch_worker\n    depends_on: [analyze]\n  - name: work_001\n    handler: h\n    depends_on: [work]\n`,
    );
    expect(p.path).toBe('steps[3].name');
    expect(p.message).toBe(
      'steps[3].name "work_001" has the form of a worker instance of batch_worker "work" (work_001, work_002, …) and would clash with one',
    );
    expect(p.hint).toBe('rename the step, e.g. "work_step_001"');
  });
});
