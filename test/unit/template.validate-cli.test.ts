import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runValidate } from '../../src/cli/validate.js';

const GOOD = 'namespace: demo\nname: flow\nversion: 1.0.0\nsteps:\n  - { name: a, handler: h }\n  - { name: b, handler: h, depends_on: [a] }\n';

describe('runValidate', () => {
  let dir: string;
  let out: string[];
  let err: string[];
  const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s) };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-validate-'));
    out = [];
    err = [];
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints ok for each good file and returns 0', async () => {
    const file = join(dir, 'good.yaml');
    await writeFile(file, GOOD);
    await writeFile(join(dir, 'one.yaml'), 'namespace: demo\nname: one\nversion: 1.0.0\nsteps: [{ name: a, handler: h }]\n');
    expect(await runValidate([file, join(dir, 'one.yaml')], io)).toBe(0);
    expect(out).toEqual([`ok  ${file}  demo/flow@1.0.0 (2 steps)`, `ok  ${join(dir, 'one.yaml')}  demo/one@1.0.0 (1 step)`]);
    expect(err).toEqual([]);
  });

  it('--json prints one document with the good templates and every problem, and the same exit code', async () => {
    const good = join(dir, 'a.yaml');
    const bad = join(dir, 'b.yaml');
    await writeFile(good, GOOD);
    await writeFile(bad, 'namespace: demo\nname: bad\nversion: 1\nstepz: []\n');
    expect(await runValidate([dir, join(dir, 'missing.yaml')], { ...io, json: true })).toBe(2);
    expect(err).toEqual([]);
    expect(out).toHaveLength(1);
    const report = JSON.parse(out[0]!);
    expect(report.ok).toBe(false);
    expect(report.templates).toEqual([{ file: good, template: 'demo/flow@1.0.0', steps: 2 }]);
    expect(report.problems.map((p: { file: string }) => p.file)).toContain(bad);
    expect(report.problems.find((p: { file: string }) => p.file === bad)).toMatchObject({
      message: expect.any(String),
      hint: expect.any(String),
      line: expect.any(Number),
    });
    expect(report.problems.at(-1)).toMatchObject({ file: join(dir, 'missing.yaml'), message: expect.stringContaining('does not exist') });
  });

  it('prints every problem of a bad file and returns 1', async () => {
    const good = join(dir, 'a.yaml');
    const bad = join(dir, 'b.yaml');
    await writeFile(good, GOOD);
    await writeFile(bad, 'namespace: demo\nname: bad\nversion: 1\nstepz: []\n');
    expect(await runValidate([dir], io)).toBe(1);
    expect(out).toEqual([`ok  ${good}  demo/flow@1.0.0 (2 steps)`]);
    expect(err).toEqual([
      `template ${bad}:1:1: the template is missing the required field "steps" — fix: add steps: followed by a list of steps ("- name: first_step")`,
      `template ${bad}:3:10: version 1 is not a semantic version; it must look like 1.0.0 (major.minor.patch) — fix: write version: 1.0.0`,
      `template ${bad}:4:1: unknown field "stepz" at the top level; did you mean "steps"? — fix: rename it to "steps"`,
    ]);
  });

  it('reports a YAML syntax error with its position', async () => {
    const bad = join(dir, 'syntax.yaml');
    await writeFile(bad, 'namespace: demo\nsteps: [a, b\nname: x\n');
    expect(await runValidate([bad], io)).toBe(1);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(new RegExp(`^template ${bad.replace(/[.]/g, '\\.')}:3:1: YAML syntax error: `));
  });

  it('returns 2 when a path does not exist, still validating the others', async () => {
    const file = join(dir, 'good.yaml');
    await writeFile(file, GOOD);
    const missing = join(dir, 'missing.yaml');
    expect(await runValidate([missing, file], io)).toBe(2);
    expect(err).toEqual([`weft validate: ${missing} does not exist; give the path of a template file or a directory of templates`]);
    expect(out).toEqual([`ok  ${file}  demo/flow@1.0.0 (2 steps)`]);
  });

  it('returns 2 when given no path', async () => {
    expect(await runValidate([], io)).toBe(2);
    expect(err).toEqual(['weft validate: no template given; usage: weft validate FILE|DIR...']);
  });

  it('returns 1 for a directory without templates', async () => {
    expect(await runValidate([dir], io)).toBe(1);
    expect(err).toEqual([`weft validate: ${dir} holds no .yaml or .yml files`]);
  });

  it('returns 1 when two files define the same template version', async () => {
    await writeFile(join(dir, 'a.yaml'), GOOD);
    await writeFile(join(dir, 'b.yaml'), GOOD);
    expect(await runValidate([dir], io)).toBe(1);
    expect(out).toHaveLength(2);
    expect(err).toEqual([
      `template ${join(dir, 'b.yaml')}: demo/flow@1.0.0 is also defined by ${join(dir, 'a.yaml')}; a namespace/name@version may be defined once — fix: change the namespace, name or version of one of the two files`,
    ]);
  });

  it('validates the shipped templates', async () => {
    const code = await runValidate([join(import.meta.dirname, '..', '..', 'templates')], io);
    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(out).toHaveLength(27);
  });
});
