import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TemplateError } from '../../src/core/template/errors.js';
import { listTemplateFiles, loadTemplateDir, loadTemplateFile } from '../../src/core/template/load.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'templates');

async function rejection(p: Promise<unknown>): Promise<TemplateError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TemplateError);
  return err as TemplateError;
}

describe('loadTemplateFile', () => {
  it('loads a good file', async () => {
    const def = await loadTemplateFile(join(FIXTURES, 'good', 'one.yaml'));
    expect(def).toMatchObject({ namespace: 'fixture', name: 'one', steps: [{ name: 'only', handler: 'fixture.only' }] });
  });

  it('names the file in every problem line', async () => {
    const file = join(FIXTURES, 'bad', 'typo.yaml');
    const err = await rejection(loadTemplateFile(file));
    expect(err.file).toBe(file);
    expect(err.message.split('\n')).toEqual([
      `template ${file}:3:10: version 1.0 is not a semantic version; it must look like 1.0.0 (major.minor.patch) — fix: write version: 1.0.0`,
      `template ${file}:7:5: unknown field "depend_on" in steps[0]; did you mean "depends_on"? — fix: rename it to "depends_on"`,
    ]);
  });

  it('turns an unreadable file into a TemplateError', async () => {
    const err = await rejection(loadTemplateFile(join(FIXTURES, 'nope.yaml')));
    expect(err.problems).toEqual([{ path: '', message: 'cannot read the file: ENOENT', hint: 'check the path and that the file is readable' }]);
  });
});

describe('loadTemplateDir', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-templates-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists *.yaml and *.yml recursively, sorted', async () => {
    expect((await listTemplateFiles(FIXTURES)).map((f) => f.slice(FIXTURES.length + 1))).toEqual([
      'bad/cycle.yaml',
      'bad/typo.yaml',
      'good/one.yaml',
      'good/two.yml',
    ]);
  });

  it('loads every template of a good directory', async () => {
    const defs = await loadTemplateDir(join(FIXTURES, 'good'));
    expect(defs.map((d) => d.name)).toEqual(['one', 'two']);
  });

  it('aggregates the problems of every bad file, each naming its file', async () => {
    const bad = join(FIXTURES, 'bad');
    const err = await rejection(loadTemplateDir(bad));
    expect(err.file).toBe(bad);
    expect(err.problems.map((p) => [p.file, p.path])).toEqual([
      [join(bad, 'cycle.yaml'), 'steps[1].depends_on'],
      [join(bad, 'typo.yaml'), 'version'],
      [join(bad, 'typo.yaml'), 'steps[0].depend_on'],
    ]);
    expect(err.message.split('\n')[0]).toMatch(
      new RegExp(`^template ${join(bad, 'cycle.yaml').replace(/[.]/g, '\\.')}:10:17: steps form a dependency cycle: (a → b → a|b → a → b);`),
    );
  });

  it('rejects two files defining the same namespace/name@version', async () => {
    const src = 'namespace: dup\nname: flow\nversion: 1.0.0\nsteps: [{ name: a, handler: h }]\n';
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'a.yaml'), src);
    await writeFile(join(dir, 'sub', 'b.yaml'), src);
    await writeFile(join(dir, 'notes.txt'), 'not a template');
    const err = await rejection(loadTemplateDir(dir));
    expect(err.problems).toEqual([
      {
        file: join(dir, 'sub', 'b.yaml'),
        path: '',
        message: `dup/flow@1.0.0 is also defined by ${join(dir, 'a.yaml')}; a namespace/name@version may be defined once`,
        hint: 'change the namespace, name or version of one of the two files',
      },
    ]);
  });

  it('returns nothing for a directory without templates', async () => {
    expect(await loadTemplateDir(dir)).toEqual([]);
  });
});
