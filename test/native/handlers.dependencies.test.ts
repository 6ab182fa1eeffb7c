/**
 * The team's own packages (issue 18): Python handlers import from a
 * virtualenv made with `python3 -m venv` holding a package pip installed from
 * a local directory, while a compiled package of the embedded Python's own
 * site-packages (numpy) still imports; Ruby handlers use a Gemfile's path gem
 * through Bundler. A handler importing a module that is not there fails to
 * load naming the module and where the interpreter looked. No network: pip
 * runs with --no-index, the gem is a path gem. Each case runs in its own
 * process (an interpreter loads once per process).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { fixtures, killChildren, lastJson, repoRoot, runFixture } from './helpers.js';

afterEach(killChildren);

// The Python the addon embeds: the virtualenv must be made by the same version.
const builtHome = execFileSync(process.execPath, [join(repoRoot, 'scripts', 'build-native.mjs'), '--flags', 'py-home'], { encoding: 'utf8' }).trim();
const python = join(builtHome, 'bin', 'python3');

interface Loaded {
  handlers: string[];
  results: Record<string, any>;
}
interface Failed {
  name: string;
  errorClass: string;
  message: string;
}

async function run(plan: object): Promise<Record<'python' | 'ruby', Loaded & Failed>> {
  const r = await runFixture('dependencies.mts', { args: [JSON.stringify(plan)], timeoutMs: 60_000, unsetEnv: ['VIRTUAL_ENV', 'BUNDLE_GEMFILE'] });
  expect(r.code, r.stderr).toBe(0);
  return lastJson(r);
}

describe("handlers import the team's own packages", () => {
  let dir: string;
  let venv: string;
  let gemfile: string;
  const pyHandlers = () => join(dir, 'handlers', 'python');
  const rbHandlers = () => join(dir, 'handlers', 'ruby');

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-deps-'));
    venv = join(dir, 'venv');
    execFileSync(python, ['-m', 'venv', venv]);
    execFileSync(join(venv, 'bin', 'pip'), ['install', '--no-index', '--quiet', join(fixtures, 'deps', 'localpkg')], {
      env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1', PIP_CONSTRAINT: '', PIP_FIND_LINKS: '' },
    });
    // A .pth file, as an editable install leaves one: site processes it, so must weft.
    const sitePackages = execFileSync(join(venv, 'bin', 'python'), ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], {
      encoding: 'utf8',
    }).trim();
    mkdirSync(join(dir, 'extra'));
    writeFileSync(join(dir, 'extra', 'pth_added.py'), 'WHERE = "added by a .pth file"\n');
    writeFileSync(join(sitePackages, 'team-extra.pth'), `${join(dir, 'extra')}\n`);

    mkdirSync(pyHandlers(), { recursive: true });
    writeFileSync(
      join(pyHandlers(), 'uses_packages.py'),
      [
        'import numpy, pip, sys',
        'import greeter, pth_added',
        'import weft',
        '',
        '@weft.step_handler("deps.greet")',
        'def greet(step):',
        '    return {"greeting": greeter.hello("ada"), "greeter_file": greeter.__file__, "pth": pth_added.WHERE}',
        '',
        '@weft.step_handler("deps.numpy")',
        'def numpy_sum(step):',
        '    return {"sum": int(numpy.arange(10).sum()), "file": numpy.__file__}',
        '',
        '@weft.step_handler("deps.clash")',
        'def clash(step):',
        '    return {"pip_file": pip.__file__, "sys_path": sys.path}',
        '',
      ].join('\n'),
    );
    gemfile = join(dir, 'Gemfile');
    writeFileSync(gemfile, `source 'https://rubygems.org'\ngem 'mygem', path: ${JSON.stringify(join(fixtures, 'deps', 'mygem'))}\n`);
    mkdirSync(rbHandlers(), { recursive: true });
    writeFileSync(
      join(rbHandlers(), 'uses_gems.rb'),
      "require 'weft'\nrequire 'mygem'\n\nWeft.handler('deps.greet') do |_step|\n  { 'greeting' => Mygem.greet('ada'), 'from' => $LOADED_FEATURES.grep(/mygem/).first, 'bundle' => ENV['BUNDLE_GEMFILE'] }\nend\n",
    );
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('Python: a package pip installed into a virtualenv, a .pth entry, and numpy from the embedded Python (the venv wins a clash)', async () => {
    const out = await run({ python: { dir: pyHandlers(), venv }, calls: { python: ['deps.greet', 'deps.numpy', 'deps.clash'] } });
    expect(out.python.handlers).toEqual(['deps.clash', 'deps.greet', 'deps.numpy']);
    const r = out.python.results;
    expect(r['deps.greet']).toMatchObject({ greeting: 'hello ada from greeter', pth: 'added by a .pth file' });
    expect(r['deps.greet'].greeter_file.startsWith(`${venv}/lib/`)).toBe(true);
    expect(r['deps.numpy'].sum).toBe(45);
    expect(r['deps.numpy'].file.startsWith(`${builtHome}/`)).toBe(true); // a C extension from the system site-packages
    // pip is in both: the venv's is the one imported, because its site-packages come first.
    expect(r['deps.clash'].pip_file.startsWith(`${venv}/`)).toBe(true);
    const path: string[] = r['deps.clash'].sys_path;
    const venvSite = path.findIndex((p) => p.startsWith(venv) && p.endsWith('site-packages'));
    const ownSite = path.findIndex((p) => p.startsWith(builtHome) && p.endsWith('site-packages'));
    expect(venvSite).toBeGreaterThan(-1);
    expect(ownSite).toBeGreaterThan(venvSite);
    expect(path.indexOf(join(dir, 'extra'))).toBeGreaterThan(venvSite);
    expect(path.indexOf(join(dir, 'extra'))).toBeLessThan(ownSite);
  });

  it('Python without the virtualenv: the import fails, naming the module and sys.path', async () => {
    const out = await run({ python: { dir: pyHandlers() } });
    expect(out.python).toMatchObject({ name: 'HandlerLoadError', errorClass: 'ModuleNotFoundError' });
    expect(out.python.message).toContain(`${pyHandlers()}/uses_packages.py:2: No module named 'greeter'`);
    expect(out.python.message).toContain('searched sys.path: [');
    expect(out.python.message).toContain(`'${builtHome}/lib/python3.`);
    expect(out.python.message).toContain("Install the package that provides 'greeter' into a virtualenv (set WEFT_PYTHON_VENV or VIRTUAL_ENV to it)");
  });

  it('Python: a directory that is not a virtualenv, or one made by another Python, is refused by name', async () => {
    const notVenv = join(dir, 'handlers');
    const out = await run({ python: { dir: pyHandlers(), venv: notVenv } });
    expect(out.python).toMatchObject({ name: 'HandlerLoadError', errorClass: 'VirtualenvError' });
    expect(out.python.message).toContain(`${notVenv} (WEFT_PYTHON_VENV or VIRTUAL_ENV) is not a virtualenv: it has no pyvenv.cfg`);

    const other = join(dir, 'other-venv');
    mkdirSync(other);
    writeFileSync(join(other, 'pyvenv.cfg'), 'home = /usr/bin\nversion = 2.7.18\n');
    const old = await run({ python: { dir: pyHandlers(), venv: other } });
    expect(old.python).toMatchObject({ errorClass: 'VirtualenvError' });
    expect(old.python.message).toMatch(/was made by Python 2\.7\.18, but this worker runs Python 3\.\d+/);
  });

  it('Ruby: a path gem through the Gemfile (Bundler.setup before the handlers load)', async () => {
    const out = await run({ ruby: { dir: rbHandlers(), gemfile }, calls: { ruby: ['deps.greet'] } });
    expect(out.ruby.handlers).toEqual(['deps.greet']);
    expect(out.ruby.results['deps.greet']).toEqual({
      greeting: 'hi ada from mygem',
      from: join(fixtures, 'deps', 'mygem', 'lib', 'mygem.rb'),
      bundle: gemfile,
    });
  });

  it('Ruby without the Gemfile, and with a Gemfile that lacks the gem: LoadError naming the library, $LOAD_PATH and the Gemfile', async () => {
    const out = await run({ ruby: { dir: rbHandlers() } });
    expect(out.ruby).toMatchObject({ name: 'HandlerLoadError', errorClass: 'LoadError' });
    expect(out.ruby.message).toContain(`${rbHandlers()}/uses_gems.rb:2: cannot load such file -- mygem`);
    expect(out.ruby.message).toMatch(/searched \$LOAD_PATH: \[".*"\]/);
    expect(out.ruby.message).toContain('install the gem that provides "mygem" (`gem install`), or list it in a Gemfile and set WEFT_BUNDLE_GEMFILE');

    const bare = join(dir, 'bare', 'Gemfile');
    mkdirSync(join(dir, 'bare'));
    writeFileSync(bare, "source 'https://rubygems.org'\n");
    const without = await run({ ruby: { dir: rbHandlers(), gemfile: bare } });
    expect(without.ruby).toMatchObject({ errorClass: 'LoadError' });
    expect(without.ruby.message).toContain(`with Bundler only the gems of ${bare} can be loaded: add the gem that provides "mygem" to it`);
  });

  it('Ruby: a Gemfile that does not exist, or names a gem that is not installed, is refused by name', async () => {
    const missing = join(dir, 'nowhere', 'Gemfile');
    const out = await run({ ruby: { dir: rbHandlers(), gemfile: missing } });
    expect(out.ruby).toMatchObject({ name: 'HandlerLoadError', errorClass: 'Weft::GemfileError' });
    expect(out.ruby.message).toContain(`the Gemfile ${missing} (WEFT_BUNDLE_GEMFILE or BUNDLE_GEMFILE) does not exist`);

    const absent = join(dir, 'absent', 'Gemfile');
    mkdirSync(join(dir, 'absent'));
    writeFileSync(absent, "source 'https://rubygems.org'\ngem 'weft-no-such-gem', '1.2.3'\n");
    const notInstalled = await run({ ruby: { dir: rbHandlers(), gemfile: absent } });
    expect(notInstalled.ruby).toMatchObject({ errorClass: 'Weft::GemfileError' });
    expect(notInstalled.ruby.message).toContain(`Bundler could not set up the Gemfile ${absent}`);
    expect(notInstalled.ruby.message).toContain('weft-no-such-gem');
    expect(notInstalled.ruby.message).toContain(`run \`BUNDLE_GEMFILE=${absent} bundle install\``);
  });
});
