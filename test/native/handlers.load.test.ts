/**
 * Loading handler files: a Python or Ruby file that cannot load fails with an
 * error naming the file and the line (its class and backtrace kept), and
 * TypeScript handlers in a folder without "type": "module" load as
 * docs/handlers.md says. Each case runs in its own process: an interpreter
 * loads once per process.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

import { fixtures, killChildren, lastJson, repoRoot, runFixture } from './helpers.js';

afterEach(killChildren);

interface LoadFailure {
  name: string;
  errorClass: string;
  message: string;
  backtrace: string[];
}

describe('handler files that fail to load name the file and the line', () => {
  it('a SyntaxError, in Python and in Ruby', async () => {
    const r = await runFixture('load-location.mts', { args: ['syntax'], timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson<{ dir: string; python: LoadFailure; ruby: LoadFailure }>(r);
    expect(out.python).toMatchObject({ name: 'HandlerLoadError', errorClass: 'SyntaxError' });
    expect(out.python.message).toBe(`could not load the python handlers: SyntaxError: ${out.dir}/bad.py:3: invalid syntax: def broken(:`);
    expect(out.ruby).toMatchObject({ name: 'HandlerLoadError', errorClass: 'SyntaxError' });
    expect(out.ruby.message).toMatch(new RegExp(`^could not load the ruby handlers: SyntaxError: ${out.dir}/bad\\.rb:3: syntax error, unexpected '\\]'`));
  });

  it('an exception raised while loading, in Python (in a module the file imports) and in Ruby', async () => {
    const r = await runFixture('load-location.mts', { args: ['raise'], timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson<{ dir: string; python: LoadFailure; ruby: LoadFailure }>(r);
    expect(out.python).toMatchObject({ name: 'HandlerLoadError', errorClass: 'KeyError' });
    expect(out.python.message).toBe(
      `could not load the python handlers: KeyError: ${out.dir}/_settings.py:2: 'WEFT_TEST_NO_SUCH_VARIABLE' (while loading ${out.dir}/bad.py)`,
    );
    expect(out.python.backtrace).toContain(`${out.dir}/bad.py:4:in <module>`);
    expect(out.ruby).toMatchObject({ name: 'HandlerLoadError', errorClass: 'ArgumentError' });
    expect(out.ruby.message).toBe(`could not load the ruby handlers: ArgumentError: ${out.dir}/bad.rb:3: bad handler file`);
    expect(out.ruby.backtrace[0]).toBe(`${out.dir}/bad.rb:3:in \`<top (required)>'`);
  });
});

describe('typescript handlers', () => {
  it('load from a folder whose package.json does not say "type": "module" (a .ts importing a .ts, and a CommonJS .js)', async () => {
    // Not runFixture: that preloads all of tsx, which would hide what
    // loadHandlerDir must register itself (as in `weft worker`).
    const env = { ...process.env };
    delete env.VITEST;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx/esm', join(fixtures, 'ts-commonjs.mts')], {
      cwd: repoRoot,
      env,
      timeout: 30_000,
    });
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({
      keys: ['orders.double', 'plain.hello'],
      double: 42,
      hello: 'hello from CommonJS',
    });
  });
});
