#!/usr/bin/env node
// Builds the weft_bridge addon (native/, binding.gyp) after checking that the
// toolchain and the Python/Ruby embedding headers are present, so a missing
// piece is reported as "install X" instead of a wall of compiler errors.
//
//   node scripts/build-native.mjs            check prerequisites, then node-gyp rebuild
//   node scripts/build-native.mjs --flags K  print one build flag for binding.gyp (K below)
//
// Python is pinned (bridge-findings pitfall 11): python3-config follows PATH and
// can pick Debian's 3.11.2 instead of pyenv's 3.11.7. WEFT_PYTHON_CONFIG names
// the python3-config to use; otherwise the one on PATH is used and its prefix
// becomes the Python home baked into the addon (runtime override:
// WEFT_PYTHON_HOME).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pyConfig = process.env.WEFT_PYTHON_CONFIG || 'python3-config';

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return null;
  }
}

function pythonInfo() {
  const prefix = run(pyConfig, ['--prefix']);
  if (!prefix) return null;
  const exe = [join(prefix, 'bin', 'python3'), join(prefix, 'bin', 'python')].find((p) => existsSync(p));
  if (!exe) return null;
  const out = run(exe, [
    '-c',
    "import sysconfig,sys;print(sysconfig.get_config_var('INSTSONAME'));print(sysconfig.get_config_var('LIBDIR'));print('%d.%d'%sys.version_info[:2]);print(sysconfig.get_config_var('Py_ENABLE_SHARED'))",
  ]);
  if (!out) return null;
  const [soname, libdir, version, shared] = out.split('\n');
  return { prefix, exe, soname, libdir, version, shared: shared === '1' };
}

const flag = process.argv.indexOf('--flags');
if (flag !== -1) {
  const key = process.argv[flag + 1];
  const py = pythonInfo();
  const out = {
    'py-cflags': () => run(pyConfig, ['--includes']),
    'py-ldflags': () => run(pyConfig, ['--embed', '--ldflags']),
    'py-home': () => py?.prefix,
    'py-soname': () => py?.soname,
    'py-libdir': () => py?.libdir,
    'rb-cflags': () => run('pkg-config', ['--cflags', 'ruby-3.1']),
    'rb-libs': () => run('pkg-config', ['--libs', 'ruby-3.1']),
  }[key];
  if (!out) {
    process.stderr.write(`build-native: unknown --flags key "${key}"\n`);
    process.exit(2);
  }
  process.stdout.write((out() ?? '') + '\n');
  process.exit(0);
}

const problems = [];
if (!run('g++', ['--version'])) problems.push('g++ (the C++ compiler) was not found: apt-get install -y g++ make');
if (!run('make', ['--version'])) problems.push('make was not found: apt-get install -y make');
// Node's headers: an explicit npm_config_nodedir, else the installation of
// the node running this script (Debian's /usr, nvm's and volta's prefixes all
// keep them in <prefix>/include/node), else node-gyp's own lookup (its header
// cache, which it fills from Node's release site when it can reach it).
const nodePrefix = dirname(dirname(process.execPath));
const nodedir = process.env.npm_config_nodedir || (existsSync(join(nodePrefix, 'include', 'node', 'node_api.h')) ? nodePrefix : undefined);
const py = pythonInfo();
if (!py) {
  problems.push(
    `${pyConfig} did not answer: install a CPython 3.11 with its development files (apt-get install -y python3-dev, or pyenv install 3.11.7 built with --enable-shared), or set WEFT_PYTHON_CONFIG to its python3-config`,
  );
} else {
  if (py.version !== '3.11')
    problems.push(`${pyConfig} is Python ${py.version}; weft's bridge needs CPython 3.11 (set WEFT_PYTHON_CONFIG to a 3.11 python3-config)`);
  if (!py.shared)
    problems.push(
      `Python at ${py.prefix} was built without --enable-shared, so there is no libpython to embed: rebuild it with PYTHON_CONFIGURE_OPTS=--enable-shared`,
    );
  if (!run(pyConfig, ['--embed', '--ldflags'])) problems.push(`${pyConfig} --embed failed: install python3-dev`);
}
if (!run('pkg-config', ['--version'])) problems.push('pkg-config was not found: apt-get install -y pkg-config (or run npm run setup)');
else if (!run('pkg-config', ['--cflags', 'ruby-3.1']))
  problems.push('Ruby 3.1 development files were not found (pkg-config ruby-3.1): apt-get install -y ruby-dev (or run npm run setup)');

if (problems.length) {
  process.stderr.write('weft: cannot build the native bridge (build/Release/weft_bridge.node):\n');
  for (const p of problems) process.stderr.write(`  - ${p}\n`);
  process.exit(1);
}

const gyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const args = [gyp, 'rebuild', '-j', '2'];
if (nodedir) args.push(`--nodedir=${nodedir}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write('weft: node-gyp failed building the native bridge; see the compiler output above\n');
  process.exit(r.status ?? 1);
}
