/**
 * The package as a team adopting weft gets it: `npm pack` (the bytes a
 * registry would serve), `npm install <tarball>` into an empty project of
 * their own, handlers and a template written in that project, and a task run
 * through every runtime (native TypeScript, Python, Ruby, TypeScript through
 * the bridge) with `npx weft run`. Also: each worker maps only the interpreter
 * it runs (/proc/PID/maps), nothing of weft's dev tooling is installed, and
 * the same works for an ordinary user (nobody) when the tests run as root.
 * Then the parts a team deploys, each its own `npx weft` process (an
 * orchestrator with the project's templates, a worker per runtime) with the
 * project's own packages: a virtualenv holding a package pip installed from a
 * directory of the project, and a Gemfile with a path gem. And every other
 * CPython 3.9-3.13 this machine has (pyenv's, or Debian's python3.X): npm
 * pack builds a runtime library for each (WEFT_PREBUILD_PYTHONS), and the
 * same installed package runs the Python step in each (WEFT_PYTHON).
 *
 * Runs `npm pack` in a copy of the checkout (see sourceCopy), so build/Release must hold the addon with
 * both runtimes (`npm run build:native`; npm ci does it).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { packageRoot } from '../../src/shared/paths.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { freePort } from '../support/ports.js';

const run = promisify(execFile);
const PACKAGE = '@weft-engine/weft';
const MINUTES = 60_000;

/**
 * The CPythons 3.9-3.13 on this machine other than the default python3's
 * version, one per minor version: Debian's /usr/bin/python3.X, else pyenv's
 * (PYENV_ROOT or ~/.pyenv). Each needs its shared libpython (pyenv builds
 * them with --enable-shared here); prebuild.mjs says so when one has none.
 */
function otherPythons(): Array<{ version: string; exe: string }> {
  const ask = (exe: string) => {
    try {
      return execFileSync(exe, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const own = ask('python3');
  const pyenv = process.env.PYENV_ROOT ?? join(homedir(), '.pyenv');
  const versions = existsSync(join(pyenv, 'versions')) ? readdirSync(join(pyenv, 'versions')) : [];
  const found: Array<{ version: string; exe: string }> = [];
  for (const minor of ['3.9', '3.10', '3.11', '3.12', '3.13']) {
    if (minor === own) continue;
    const candidates = [
      `/usr/bin/python${minor}`,
      ...versions.filter((v) => v.startsWith(`${minor}.`)).map((v) => join(pyenv, 'versions', v, 'bin', `python${minor}`)),
    ];
    const exe = candidates.find((c) => existsSync(c) && ask(c) === minor);
    if (exe) found.push({ version: minor, exe });
  }
  return found;
}
const OTHER_PYTHONS = otherPythons();

interface Project {
  dir: string;
  /** Runs a command in the project, as `user` when set (root only). */
  exec(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }>;
}

let work: string;
let tarball: string;
let db: TestDatabase;

/** The project's own handlers, one file per runtime, and a template chaining them. */
function writeUserCode(dir: string): void {
  mkdirSync(join(dir, 'handlers', 'typescript'), { recursive: true });
  mkdirSync(join(dir, 'handlers', 'python'));
  mkdirSync(join(dir, 'handlers', 'ruby'));
  mkdirSync(join(dir, 'templates'));
  writeFileSync(
    join(dir, 'handlers', 'typescript', 'numbers.ts'),
    `import { defineHandlers, type Step } from '${PACKAGE}';
const input = (step: Step): number => {
  const parents = Object.values(step.dependency_results) as number[];
  return parents.length ? parents[0]! : (step.context as { n: number }).n;
};
export const handlers = defineHandlers({
  'app.square': (step: Step) => input(step) * input(step),
  'app.inc': (step: Step) => input(step) + 1,
});
`,
  );
  writeFileSync(
    join(dir, 'handlers', 'python', 'numbers.py'),
    `import sys
import weft

@weft.step_handler("app.add_ten")
def add_ten(step):
    (parent,) = step.dependency_results.values()
    return {"value": parent + 10, "python": "%d.%d" % sys.version_info[:2]}
`,
  );
  writeFileSync(
    join(dir, 'handlers', 'ruby', 'numbers.rb'),
    `Weft.handler('app.double') do |step|
  step.dependency_results.values.first.fetch('value') * 2
end
`,
  );
  writeFileSync(
    join(dir, 'templates', 'chain.yaml'),
    `namespace: app
name: chain
version: 1.0.0
runtime: native
input_schema: { type: object, required: [n], properties: { n: { type: integer } } }
steps:
  - { name: square, handler: app.square }
  - { name: add_ten, handler: app.add_ten, runtime: python, depends_on: [square] }
  - { name: double, handler: app.double, runtime: ruby, depends_on: [add_ten] }
  - { name: inc, handler: app.inc, runtime: typescript, depends_on: [double] }
`,
  );
}

/**
 * An empty project (`npm init -y`) with the tarball installed, as root or as
 * `user`. The npm cache is the local one (copied for another user), so
 * nothing is downloaded that this machine already has.
 */
async function installProject(user?: string): Promise<Project & { installMs: number; installOut: string; systemCalls: string }> {
  const dir = join(work, user ? `project-${user}` : 'project');
  mkdirSync(dir);
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
  delete env.WEFT_BRIDGE_PATH;
  delete env.VITEST;
  delete env.NODE_OPTIONS;
  let prefix: string[] = [];
  if (user) {
    const home = join(work, `home-${user}`);
    mkdirSync(home);
    const cache = join(homedir(), '.npm', '_cacache');
    if (existsSync(cache)) cpSync(cache, join(home, '.npm', '_cacache'), { recursive: true });
    await run('chown', ['-R', user, dir, home]);
    env.HOME = home;
    env.npm_config_cache = join(home, '.npm');
    // PATH without root's private directories (pyenv shims under /root): the user's own python3 and ruby.
    env.PATH = (env.PATH ?? '')
      .split(':')
      .filter((p) => !p.startsWith('/root'))
      .join(':');
    delete env.WEFT_PYTHON_HOME;
    prefix = ['runuser', '-u', user, '--'];
  }
  const exec = (cmd: string, args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const [c, ...a] = [...prefix, cmd, ...args];
    return run(c!, a, { cwd: dir, env: { ...env, ...extra }, maxBuffer: 64 << 20, timeout: 10 * MINUTES });
  };
  await exec('npm', ['init', '-y']);
  // npm 11 runs a dependency's install script only when the project allows it (README "Install").
  const pkgJson = join(dir, 'package.json');
  writeFileSync(pkgJson, JSON.stringify({ ...JSON.parse(readFileSync(pkgJson, 'utf8')), allowScripts: { [PACKAGE]: true } }, null, 2));
  // During the install, apt-get, apt, dpkg and sudo are found first as stand-ins that write down any call (and fail).
  const tools = join(work, `system-tools-${user ?? 'root'}`);
  const calls = join(tools, 'calls.log');
  mkdirSync(tools);
  writeFileSync(calls, '');
  chmodSync(calls, 0o666);
  for (const tool of ['apt-get', 'apt', 'dpkg', 'sudo']) {
    writeFileSync(join(tools, tool), `#!/bin/sh\necho "${tool} $*" >> ${calls}\nexit 1\n`);
    chmodSync(join(tools, tool), 0o755);
  }
  const started = Date.now();
  const out = await exec('npm', ['install', '--prefer-offline', '--foreground-scripts', tarball], { PATH: `${tools}:${env.PATH ?? ''}` });
  return { dir, exec, installMs: Date.now() - started, installOut: out.stdout + out.stderr, systemCalls: readFileSync(calls, 'utf8') };
}

/** The lines of /proc/PID/maps of a worker once it has started, as a set of mapped file names. */
async function workerMaps(project: Project, runtime: string): Promise<string[]> {
  const bin = join(project.dir, 'node_modules', '.bin', 'weft');
  const child = spawn(bin, ['worker', '--runtime', runtime, '--handlers', join(project.dir, 'handlers', runtime === 'native' ? 'typescript' : runtime)], {
    cwd: project.dir,
    env: { ...process.env, WEFT_DATABASE_URL: db.url, WEFT_LOG_LEVEL: 'info', VITEST: undefined, WEFT_BRIDGE_PATH: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the ${runtime} worker did not start within 2 minutes; its output:\n${out}`)), 2 * MINUTES);
      const onData = (b: Buffer) => {
        out += b.toString();
        if (out.includes('worker started')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the ${runtime} worker exited (${code}) before it started; its output:\n${out}`));
      });
    });
    const maps = readFileSync(`/proc/${child.pid}/maps`, 'utf8');
    return [...new Set(maps.split('\n').map((l) => l.split(/\s+/)[5] ?? ''))].filter((f) => f.startsWith('/'));
  } finally {
    child.removeAllListeners('exit');
    process.kill(child.pid!, 'SIGKILL');
  }
}

/**
 * One `npx weft …` part started in the project (as a deployment runs it), ready once its
 * output says `readyText`; stop() kills it by its pid.
 */
function startPart(dir: string, args: string[], extra: NodeJS.ProcessEnv, readyText: string): { ready: Promise<void>; stop(): Promise<void> } {
  const child = spawn(join(dir, 'node_modules', '.bin', 'weft'), args, {
    cwd: dir,
    env: { ...process.env, WEFT_LOG_LEVEL: 'info', VITEST: undefined, WEFT_BRIDGE_PATH: undefined, ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`weft ${args.join(' ')} was not ready within 3 minutes; its output:\n${out}`)), 3 * MINUTES);
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes(readyText)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`weft ${args.join(' ')} exited (${code}) before it was ready; its output:\n${out}`));
    });
  });
  ready.catch(() => undefined);
  return {
    ready,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, 'SIGKILL');
        await exited;
      }
    },
  };
}

const names = (maps: string[], re: RegExp) => maps.filter((f) => re.test(f)).map((f) => f.split('/').pop());

/**
 * The checkout, copied to pack from: npm pack's prepack rebuilds dist/ and
 * prebuilds/ where it runs, and in the checkout that rewrote files that other
 * test files' processes were serving at that moment (a browser test got
 * dist/ui/app.js with a Content-Length that no longer matched). The copy
 * shares node_modules and leaves out what the build makes or never reads.
 */
function sourceCopy(work: string): string {
  const root = packageRoot();
  const dir = join(work, 'source');
  mkdirSync(dir);
  const skip = new Set(['node_modules', '.git', '.weft', 'dist', 'prebuilds']);
  for (const name of readdirSync(root)) if (!skip.has(name)) cpSync(join(root, name), join(dir, name), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'weft-pack-'));
  chmodSync(work, 0o755); // another user (below) must reach its project in here
  db = await createTestDatabase();
  const started = Date.now();
  const { stdout } = await run('npm', ['pack', '--pack-destination', work], {
    cwd: sourceCopy(work),
    env: { ...process.env, WEFT_PREBUILD_PYTHONS: OTHER_PYTHONS.map((p) => p.exe).join(' ') },
    maxBuffer: 64 << 20,
    timeout: 15 * MINUTES,
  });
  tarball = join(work, stdout.trim().split('\n').pop()!);
  const files = (await run('tar', ['tzvf', tarball], { maxBuffer: 64 << 20 })).stdout;
  const prebuilt = files
    .split('\n')
    .filter((l) => l.includes('package/prebuilds/'))
    .reduce((sum, l) => sum + Number(l.split(/\s+/)[2]), 0);
  console.log(
    `pack: ${tarball} ${statSync(tarball).size} bytes in ${Date.now() - started} ms; prebuilt binaries ${prebuilt} bytes unpacked; ` +
      `extra Python runtime libraries: ${OTHER_PYTHONS.map((p) => `${p.version} (${p.exe})`).join(', ') || 'none (no other CPython 3.9-3.13 here)'}`,
  );
}, 20 * MINUTES);

afterAll(async () => {
  await db?.drop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack → npm install in an empty project', () => {
  let project: Awaited<ReturnType<typeof installProject>>;

  beforeAll(async () => {
    project = await installProject();
    console.log(`install (root): ${project.installMs} ms`);
    writeUserCode(project.dir);
  }, 15 * MINUTES);

  it('ships what a user needs and nothing of the tests or the dev tools', () => {
    const pkg = join(project.dir, 'node_modules', '@weft-engine', 'weft');
    for (const f of ['dist/src/cli/main.js', 'migrations', 'workers/python/weft/__init__.py', 'workers/ruby/weft.rb', 'binding.gyp', 'native/addon.cc'])
      expect(existsSync(join(pkg, f)), f).toBe(true);
    const prebuilt = readdirSync(join(pkg, 'prebuilds', 'linux-x64'));
    expect(prebuilt).toContain('weft_bridge.node');
    expect(prebuilt.some((f) => /^weft_python-3\.\d+\.node$/.test(f))).toBe(true);
    expect(prebuilt.some((f) => /^weft_ruby-3\.\d+\.node$/.test(f))).toBe(true);
    expect(existsSync(join(pkg, 'test'))).toBe(false);
    expect(existsSync(join(pkg, 'src'))).toBe(false);
    expect(existsSync(join(pkg, 'scripts', 'setup-dev.sh'))).toBe(false);
    // Python's byte code that running the checkout's tests leaves beside the sources (package.json files: !**/__pycache__).
    expect(existsSync(join(pkg, 'workers', 'python', 'weft', '__pycache__'))).toBe(false);
    expect(existsSync(join(pkg, 'handlers', 'python', '__pycache__'))).toBe(false);
    // No dev dependency came along (the dashboard is prebundled; lint, tests and the browser driver are not shipped).
    for (const dev of ['vitest', 'typescript', 'playwright-core', 'eslint', 'knip', 'preact'])
      expect(existsSync(join(project.dir, 'node_modules', dev)), dev).toBe(false);
    // The install step checked every runtime, served each from the prebuilt binaries, and installed nothing system-wide.
    expect(project.installOut).toMatch(/weft: native\/TypeScript handlers: ready \(prebuilds\/linux-x64\/weft_bridge\.node\)/);
    expect(project.installOut).toMatch(/weft: python handlers: ready \(python 3\.\d+/);
    expect(project.installOut).toMatch(/weft: ruby handlers: ready \(ruby 3\.\d+/);
    expect(project.installOut).not.toMatch(/apt-get|chromium|clang-format|node-gyp/i);
    expect(project.systemCalls).toBe('');
  });

  it(
    'runs a task through native TypeScript, Python, Ruby and bridged TypeScript handlers that live in the project',
    async () => {
      const { stdout } = await project.exec('npx', ['weft', 'run', 'app/chain', '--context', '{"n": 3}', '--wait', '--json'], { WEFT_DATABASE_URL: db.url });
      const task = JSON.parse(stdout) as { state: string; steps: Array<{ name: string; state: string; result: unknown }> };
      expect(task.state).toBe('complete');
      const results = Object.fromEntries(task.steps.map((s) => [s.name, s.result]));
      expect(results.square).toBe(9);
      expect(results.add_ten).toMatchObject({ value: 19 });
      expect(results.double).toBe(38);
      expect(results.inc).toBe(39);
    },
    5 * MINUTES,
  );

  it(
    'maps only the interpreter a worker runs: native none, python no libruby, ruby no libpython',
    async () => {
      const native = await workerMaps(project, 'native');
      expect(names(native, /libpython|libruby|weft_python|weft_ruby/)).toEqual([]);
      const typescript = await workerMaps(project, 'typescript');
      expect(names(typescript, /weft_bridge/)).toEqual(['weft_bridge.node']);
      expect(names(typescript, /libpython|libruby|weft_python|weft_ruby/)).toEqual([]);
      const python = await workerMaps(project, 'python');
      expect(names(python, /libpython/).length).toBe(1);
      expect(names(python, /weft_python-3\.\d+\.node/).length).toBe(1);
      expect(names(python, /libruby|weft_ruby/)).toEqual([]);
      const ruby = await workerMaps(project, 'ruby');
      expect(names(ruby, /libruby/).length).toBe(1);
      expect(names(ruby, /libpython|weft_python/)).toEqual([]);
    },
    10 * MINUTES,
  );

  it.skipIf(OTHER_PYTHONS.length === 0)(
    `runs the Python step in every other CPython here from the same package (${OTHER_PYTHONS.map((p) => p.version).join(', ') || 'none found'})`,
    async () => {
      const prebuilt = readdirSync(join(project.dir, 'node_modules', '@weft-engine', 'weft', 'prebuilds', 'linux-x64'));
      for (const { version, exe } of OTHER_PYTHONS) {
        expect(prebuilt).toContain(`weft_python-${version}.node`);
        const { stdout } = await project.exec('npx', ['weft', 'run', 'app/chain', '--context', '{"n": 2}', '--wait', '--json'], {
          WEFT_DATABASE_URL: db.url,
          WEFT_PYTHON: exe,
        });
        const task = JSON.parse(stdout) as { state: string; steps: Array<{ name: string; result: unknown }> };
        expect(task.state, exe).toBe('complete');
        expect(Object.fromEntries(task.steps.map((s) => [s.name, s.result])), exe).toMatchObject({ add_ten: { value: 14, python: version }, inc: 29 });
      }
    },
    10 * MINUTES,
  );

  it(
    "the install check names a missing interpreter with the command that gets it, and builds a Python's runtime library from source when none is prebuilt",
    async () => {
      const pkg = join(project.dir, 'node_modules', '@weft-engine', 'weft');
      const check = (env: NodeJS.ProcessEnv) => project.exec(process.execPath, [join(pkg, 'scripts', 'install.mjs')], env);
      // No Ruby where WEFT_RUBY points: the check still succeeds, serving the rest.
      const noRuby = await check({ WEFT_RUBY: '/nonexistent/bin/ruby' });
      expect(noRuby.stdout).toContain('weft: native/TypeScript handlers: ready');
      expect(noRuby.stdout).toMatch(/weft: python handlers: ready/);
      expect(noRuby.stdout).toContain(
        'weft: ruby handlers: not available: no Ruby found (tried /nonexistent/bin/ruby, from WEFT_RUBY): install CRuby 3.0-3.4 (Debian: apt-get install -y ruby) or set WEFT_RUBY=/path/to/ruby\n',
      );
      // A Python whose runtime library the package lacks (removed here): built from the shipped sources, then used.
      const other = OTHER_PYTHONS.at(-1) ?? { version: '3.11', exe: 'python3' };
      rmSync(join(pkg, 'prebuilds', 'linux-x64', `weft_python-${other.version}.node`), { force: true });
      const built = await check({ WEFT_PYTHON: other.exe });
      expect(built.stdout).toContain(`weft: python handlers: no prebuilt runtime for python ${other.version}; building one from source\n`);
      expect(built.stdout).toContain('weft: python handlers: built; they load in the next process');
      expect(existsSync(join(pkg, 'build', 'Release', `weft_python-${other.version}.node`))).toBe(true);
      const { stdout } = await project.exec('npx', ['weft', 'run', 'app/chain', '--context', '{"n": 1}', '--wait', '--json'], {
        WEFT_DATABASE_URL: db.url,
        WEFT_PYTHON: other.exe,
      });
      const task = JSON.parse(stdout) as { state: string; steps: Array<{ name: string; result: unknown }> };
      expect(task.state).toBe('complete');
      expect(Object.fromEntries(task.steps.map((s) => [s.name, s.result]))).toMatchObject({ add_ten: { value: 11, python: other.version }, inc: 23 });
    },
    10 * MINUTES,
  );

  // Last in this project: its Python and Ruby handlers need the venv and the Gemfile from here on.
  it(
    'runs the parts as separate processes (orchestrator, a worker per runtime) with a virtualenv package and a Bundler path gem',
    async () => {
      const dir = project.dir;
      // The team's own packages, in their project: a Python package pip installs into a venv, a gem a Gemfile names by path.
      const deps = join(packageRoot(), 'test', 'native', 'fixtures', 'deps');
      cpSync(join(deps, 'localpkg'), join(dir, 'localpkg'), { recursive: true });
      cpSync(join(deps, 'mygem'), join(dir, 'gems', 'mygem'), { recursive: true });
      await project.exec('python3', ['-m', 'venv', 'venv']);
      await project.exec(join(dir, 'venv', 'bin', 'pip'), ['install', '--no-index', '--quiet', './localpkg'], {
        PIP_DISABLE_PIP_VERSION_CHECK: '1',
        PIP_CONSTRAINT: '',
        PIP_FIND_LINKS: '',
      });
      writeFileSync(join(dir, 'Gemfile'), "gem 'mygem', path: 'gems/mygem'\n");
      writeFileSync(
        join(dir, 'handlers', 'python', 'greetings.py'),
        `import greeter
import weft

@weft.step_handler("app.greet_py")
def greet(step):
    return {"text": greeter.hello("weft"), "from": greeter.__file__}
`,
      );
      writeFileSync(
        join(dir, 'handlers', 'ruby', 'greetings.rb'),
        "require 'mygem'\n\nWeft.handler('app.greet_rb') { |step| Mygem.greet(step.dependency_results.values.first.fetch('text')) }\n",
      );
      writeFileSync(
        join(dir, 'templates', 'greet.yaml'),
        `namespace: app
name: greet
version: 1.0.0
runtime: python
steps:
  - { name: py, handler: app.greet_py }
  - { name: rb, handler: app.greet_rb, runtime: ruby, depends_on: [py] }
`,
      );

      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const env = { WEFT_DATABASE_URL: db.url };
      // The orchestrator first: it registers the project's templates, whose namespaces the workers then serve.
      const orchestrator = startPart(dir, ['orchestrator', '--templates', './templates', '--port', String(port)], env, 'orchestrator listening');
      const parts = [orchestrator];
      try {
        await orchestrator.ready;
        parts.push(
          startPart(dir, ['worker', '--runtime', 'native', '--handlers', './handlers/typescript'], env, 'worker started'),
          startPart(dir, ['worker', '--runtime', 'typescript', '--handlers', './handlers/typescript'], env, 'worker started'),
          startPart(dir, ['worker', '--runtime', 'python', '--handlers', './handlers/python'], { ...env, VIRTUAL_ENV: join(dir, 'venv') }, 'worker started'),
          startPart(dir, ['worker', '--runtime', 'ruby', '--handlers', './handlers/ruby'], { ...env, BUNDLE_GEMFILE: join(dir, 'Gemfile') }, 'worker started'),
        );
        await Promise.all(parts.map((p) => p.ready));
        const remote = { WEFT_ORCHESTRATOR_URL: url };
        const chain = JSON.parse((await project.exec('npx', ['weft', 'run', 'app/chain', '--context', '{"n": 4}', '--wait', '--json'], remote)).stdout) as {
          state: string;
          steps: Array<{ name: string; result: unknown }>;
        };
        expect(chain.state).toBe('complete');
        expect(Object.fromEntries(chain.steps.map((s) => [s.name, s.result]))).toMatchObject({ square: 16, add_ten: { value: 26 }, double: 52, inc: 53 });
        const greet = JSON.parse((await project.exec('npx', ['weft', 'run', 'app/greet', '--wait', '--json'], remote)).stdout) as {
          state: string;
          steps: Array<{ name: string; result: unknown }>;
        };
        expect(greet.state).toBe('complete');
        const results = Object.fromEntries(greet.steps.map((s) => [s.name, s.result])) as { py: { text: string; from: string }; rb: string };
        expect(results.py.text).toBe('hello weft from greeter');
        expect(results.py.from.startsWith(join(dir, 'venv', 'lib') + '/')).toBe(true);
        expect(results.rb).toBe('hi hello weft from greeter from mygem');
      } finally {
        await Promise.all(parts.map((p) => p.stop()));
      }
    },
    10 * MINUTES,
  );
});

// As root, the same install and run as an ordinary user (nobody) with the machine's own Python and Ruby.
describe.runIf(process.getuid?.() === 0)('as an ordinary user', () => {
  it(
    'installs and runs the same task in every runtime',
    async () => {
      const project = await installProject('nobody');
      console.log(`install (nobody): ${project.installMs} ms`);
      expect(project.installOut).toMatch(/weft: python handlers: ready/);
      expect(project.installOut).toMatch(/weft: ruby handlers: ready/);
      expect(project.systemCalls).toBe('');
      writeUserCode(project.dir);
      await run('chown', ['-R', 'nobody', project.dir]);
      const { stdout } = await project.exec('npx', ['weft', 'run', 'app/chain', '--context', '{"n": 5}', '--wait', '--json'], { WEFT_DATABASE_URL: db.url });
      const task = JSON.parse(stdout) as { state: string; steps: Array<{ name: string; result: unknown }> };
      expect(task.state).toBe('complete');
      expect(Object.fromEntries(task.steps.map((s) => [s.name, s.result]))).toMatchObject({ square: 25, add_ten: { value: 35 }, double: 70, inc: 71 });
    },
    20 * MINUTES,
  );
});
