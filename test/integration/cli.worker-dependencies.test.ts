/**
 * `weft worker` and the team's own packages (issue 18): a handler importing
 * a module that is not installed stops the worker at start (exit 1) with the
 * module's name and where the interpreter looked; the settings that name a
 * virtualenv or a Gemfile (VIRTUAL_ENV, WEFT_PYTHON_VENV, WEFT_BUNDLE_GEMFILE)
 * reach the worker's interpreter from its environment. The bridge's side of
 * both is in test/native/handlers.dependencies.test.ts. No database is
 * needed: handlers load before the worker connects.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { spawnWeft, type WeftProcess } from '../support/weft-process.js';
import { until } from '../support/tcp-proxy.js';
import { packageRoot } from '../../src/shared/paths.js';

// Nothing listens on port 1: a worker that got as far as connecting waits there.
const NO_DATABASE = { WEFT_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none', WEFT_LOG_FORMAT: 'json', WEFT_LOG_LEVEL: 'info' };
const pythonHome = execFileSync(process.execPath, [join(packageRoot(), 'scripts', 'build-native.mjs'), '--flags', 'py-home'], { encoding: 'utf8' }).trim();

async function exitOf(p: WeftProcess): Promise<number | null> {
  if (p.child.exitCode !== null) return p.child.exitCode;
  return new Promise((resolve) => p.child.once('exit', (code) => resolve(code)));
}

describe("weft worker and the handlers' own packages", () => {
  let dir: string;
  const started: WeftProcess[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-worker-deps-'));
    mkdirSync(join(dir, 'missing', 'python'), { recursive: true });
    mkdirSync(join(dir, 'missing', 'ruby'), { recursive: true });
    writeFileSync(join(dir, 'missing', 'python', 'orders.py'), 'import weft\nimport weft_test_absent_module\n');
    writeFileSync(join(dir, 'missing', 'ruby', 'orders.rb'), "require 'weft'\nrequire 'weft_test_absent_library'\n");

    // A virtualenv without pip (fast): the module is dropped into its site-packages.
    const venv = join(dir, 'venv');
    execFileSync(join(pythonHome, 'bin', 'python3'), ['-m', 'venv', '--without-pip', venv]);
    const version = execFileSync(join(venv, 'bin', 'python'), ['-c', 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")'], {
      encoding: 'utf8',
    }).trim();
    writeFileSync(join(venv, 'lib', `python${version}`, 'site-packages', 'team_pricing.py'), 'RATE = 3\n');
    mkdirSync(join(dir, 'uses', 'python'), { recursive: true });
    writeFileSync(
      join(dir, 'uses', 'python', 'orders.py'),
      'import weft\nimport team_pricing\n\n@weft.step_handler("orders.price")\ndef price(step):\n    return team_pricing.RATE\n',
    );
    writeFileSync(join(dir, 'Gemfile'), `gem 'mygem', path: ${JSON.stringify(join(packageRoot(), 'test', 'native', 'fixtures', 'deps', 'mygem'))}\n`);
    mkdirSync(join(dir, 'uses', 'ruby'), { recursive: true });
    writeFileSync(join(dir, 'uses', 'ruby', 'orders.rb'), "require 'weft'\nrequire 'mygem'\n\nWeft.handler('orders.greet') { |_s| Mygem.greet('x') }\n");
  }, 60_000);
  afterEach(async () => {
    await Promise.all(started.splice(0).map((p) => p.stop('SIGKILL')));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('Python: a missing module stops the worker at start, naming it and sys.path', async () => {
    const w = spawnWeft(['worker', '--runtime', 'python', '--handlers', join(dir, 'missing', 'python')], NO_DATABASE);
    started.push(w);
    expect(await exitOf(w)).toBe(1);
    expect(w.output()).toContain(
      `weft: could not load the python handlers: ModuleNotFoundError: ${dir}/missing/python/orders.py:2: No module named 'weft_test_absent_module'; Python 3.`,
    );
    expect(w.output()).toMatch(/searched sys\.path: \['[^\]]*'\]\. Install the package that provides 'weft_test_absent_module'/);
  });

  it('Ruby: a missing library stops the worker at start, naming it and $LOAD_PATH', async () => {
    const w = spawnWeft(['worker', '--runtime', 'ruby', '--handlers', join(dir, 'missing', 'ruby')], NO_DATABASE);
    started.push(w);
    expect(await exitOf(w)).toBe(1);
    expect(w.output()).toContain(
      `weft: could not load the ruby handlers: LoadError: ${dir}/missing/ruby/orders.rb:2: cannot load such file -- weft_test_absent_library; Ruby `,
    );
    expect(w.output()).toMatch(/searched \$LOAD_PATH: \[".*"\]; install the gem that provides "weft_test_absent_library"/);
  });

  it('VIRTUAL_ENV (what activate sets) reaches the Python worker, and WEFT_PYTHON_VENV wins over it', async () => {
    const cases: Array<Record<string, string>> = [{ VIRTUAL_ENV: join(dir, 'venv') }, { VIRTUAL_ENV: join(dir, 'uses'), WEFT_PYTHON_VENV: join(dir, 'venv') }];
    for (const env of cases) {
      const w = spawnWeft(['worker', '--runtime', 'python', '--handlers', join(dir, 'uses', 'python')], { ...NO_DATABASE, ...env });
      started.push(w);
      const out = await until(
        'the handlers to load',
        async () => w.output(),
        (o) => o.includes('bridge runtime loaded') || w.child.exitCode !== null,
        60_000,
      );
      expect(out).toContain(`"virtualenv":"${join(dir, 'venv')}"`);
      await w.stop('SIGKILL');
    }
  });

  it('WEFT_BUNDLE_GEMFILE reaches the Ruby worker: its path gem loads', async () => {
    const w = spawnWeft(['worker', '--runtime', 'ruby', '--handlers', join(dir, 'uses', 'ruby')], {
      ...NO_DATABASE,
      WEFT_BUNDLE_GEMFILE: join(dir, 'Gemfile'),
    });
    started.push(w);
    const out = await until(
      'the handlers to load',
      async () => w.output(),
      (o) => o.includes('bridge runtime loaded') || w.child.exitCode !== null,
      60_000,
    );
    expect(out).toContain(`"gemfile":"${join(dir, 'Gemfile')}"`);
    expect(out).toContain('"handlers":1');
  });
});
