import { describe, expect, it } from 'vitest';
import { TemplateError } from '../../src/core/template/errors.js';
import { parseTemplate, validateTemplateObject } from '../../src/core/template/parse.js';
import { DEFAULT_BATCH, DEFAULT_RETRY, DEFAULT_TIMEOUT_MS, templateKey } from '../../src/core/template/types.js';

describe('parseTemplate: defaults', () => {
  it('fills in every default a template leaves out', () => {
    const def = parseTemplate('namespace: demo\nname: flow\nversion: 1.2.3\nsteps:\n  - name: a\n    handler: h\n', 't.yaml');
    expect(def).toEqual({
      namespace: 'demo',
      name: 'flow',
      version: '1.2.3',
      runtime: 'native',
      steps: [
        {
          name: 'a',
          handler: 'h',
          runtime: 'native',
          type: 'standard',
          depends_on: [],
          inputs: {},
          retry: DEFAULT_RETRY,
          timeout_ms: DEFAULT_TIMEOUT_MS,
        },
      ],
    });
    expect(templateKey(def)).toBe('demo/flow@1.2.3');
  });

  it('takes a step runtime from the template default unless the step overrides it', () => {
    const def = parseTemplate(
      'namespace: demo\nname: flow\nversion: 1.0.0\nruntime: python\nsteps:\n  - { name: a, handler: h }\n  - { name: b, handler: h, runtime: ruby, depends_on: [a] }\n',
      't.yaml',
    );
    expect(def.runtime).toBe('python');
    expect(def.steps.map((s) => s.runtime)).toEqual(['python', 'ruby']);
  });

  it('merges a partial retry over the defaults and a partial batch over the batch defaults', () => {
    const def = parseTemplate(
      'namespace: demo\nname: flow\nversion: 1.0.0\ndescription: d\nsteps:\n  - name: a\n    description: first\n    handler: h\n    type: batchable\n    retry: { max_attempts: 5, backoff: fixed }\n    timeout_ms: 1000\n    inputs: { k: [1, { x: true }] }\n    batch: { worker_template: w }\n  - { name: w, handler: h, type: batch_worker, depends_on: [a] }\n',
      't.yaml',
    );
    const a = def.steps[0]!;
    expect(a.retry).toEqual({ max_attempts: 5, backoff: 'fixed', base_ms: DEFAULT_RETRY.base_ms, max_ms: DEFAULT_RETRY.max_ms });
    expect(a.batch).toEqual({ worker_template: 'w', ...DEFAULT_BATCH });
    expect(a.timeout_ms).toBe(1000);
    expect(a.inputs).toEqual({ k: [1, { x: true }] });
    expect(a.description).toBe('first');
    expect(def.description).toBe('d');
    expect(def.steps[1]!.batch).toBeUndefined();
  });

  it('keeps input_schema as given', () => {
    const def = parseTemplate(
      'namespace: demo\nname: flow\nversion: 1.0.0\ninput_schema: { type: object, required: [n] }\nsteps: [{ name: a, handler: h }]\n',
      't.yaml',
    );
    expect(def.input_schema).toEqual({ type: 'object', required: ['n'] });
  });
});

describe('validateTemplateObject (JSON from the API)', () => {
  const good = {
    namespace: 'api_ns',
    name: 'flow',
    version: '2.0.0',
    steps: [
      { name: 'a', handler: 'h' },
      { name: 'b', handler: 'h', depends_on: ['a'], retry: { max_attempts: 1 } },
    ],
  };

  it('accepts a good object and fills defaults without sharing its arrays and objects', () => {
    const input = structuredClone(good);
    const def = validateTemplateObject(input, 'request body');
    expect(def.steps[1]).toMatchObject({ depends_on: ['a'], retry: { ...DEFAULT_RETRY, max_attempts: 1 }, type: 'standard', runtime: 'native' });
    def.steps[1]!.depends_on.push('x');
    expect(input.steps[1]!.depends_on).toEqual(['a']);
  });

  it('reports the same problems as YAML, without line numbers', () => {
    const bad = { ...good, version: '1.0', extra: 1, steps: [{ name: 'a', handler: 'h', depends_on: ['zz'] }] };
    let err: unknown;
    try {
      validateTemplateObject(bad, 'request body');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TemplateError);
    const e = err as TemplateError;
    expect(e.problems.map((p) => [p.path, p.line])).toEqual([
      ['extra', undefined],
      ['version', undefined],
      ['steps[0].depends_on[0]', undefined],
    ]);
    expect(e.message.split('\n')).toEqual([
      'template request body: unknown field "extra" at the top level — fix: remove it; the fields allowed at the top level are: namespace, name, version, description, runtime, input_schema, steps, schedules',
      'template request body: version "1.0" is not a semantic version; it must look like 1.0.0 (major.minor.patch) — fix: write version: 1.0.0',
      'template request body: steps[0].depends_on names "zz", which is not a step of this template; steps are: a — fix: add a step named "zz" or remove it from depends_on',
    ]);
  });

  it('rejects a non-object body and a version sent as a number', () => {
    expect(() => validateTemplateObject([good], 'body')).toThrow(
      'template body: the template is a list; expected a mapping with namespace, name, version and steps',
    );
    expect(() => validateTemplateObject(null, 'body')).toThrow('template body: the template is empty;');
    expect(() => validateTemplateObject({ ...good, version: 2 }, 'body')).toThrow(
      'template body: version 2 is not a semantic version; it must look like 1.0.0 (major.minor.patch) — fix: write version: 2.0.0',
    );
  });
});
