#!/usr/bin/env node
// Builds the native addon from source (native/, binding.gyp): the core
// weft_bridge.node (bridge host + typescript target; no interpreter) and one
// runtime library per interpreter found, weft_python-3.X.node and
// weft_ruby-3.Y.node (common/runtime-plugin.h), into build/Release/. Checks
// the toolchain and each interpreter's headers first, so a missing piece is
// reported as "install X" instead of a wall of compiler errors.
//
//   node scripts/build-native.mjs             build the core and every runtime it can; say what it skipped
//   node scripts/build-native.mjs --all       the same, but fail unless python and ruby are both built (developers, CI)
//   node scripts/build-native.mjs --flags K   print one build flag for binding.gyp (keys below)
//
// Which interpreters: scripts/lib/interpreters.mjs (WEFT_PYTHON, WEFT_RUBY).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { findPython, findRuby, toolchainProblems } from './lib/interpreters.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** binding.gyp's `<!(...)` calls: one flag each. with-* are set by the build below (WEFT_BUILD_*). */
function printFlag(key) {
  const py = () => findPython();
  const rb = () => findRuby();
  const buildable = (x) => !x.missing && x.problems.length === 0;
  const flags = {
    'with-python': () => process.env.WEFT_BUILD_PYTHON ?? (buildable(py()) ? '1' : '0'),
    'with-ruby': () => process.env.WEFT_BUILD_RUBY ?? (buildable(rb()) ? '1' : '0'),
    'py-cflags': () => [...new Set([py().include, py().platinclude])].map((d) => `-I${d}`).join(' '),
    'py-ldflags': () => `-L${py().libdir} -lpython${py().ldversion} -ldl -lm`,
    'py-home': () => py().home,
    'py-soname': () => py().soname,
    'py-libdir': () => py().libdir,
    'rb-cflags': () => `-I${rb().archhdrdir} -I${rb().hdrdir}`,
    'rb-libs': () => `-L${rb().libdir} -l${rb().soname_lib} -lm`,
    'rb-libdir': () => rb().libdir,
  }[key];
  if (!flags) {
    process.stderr.write(`build-native: unknown --flags key "${key}"\n`);
    process.exit(2);
  }
  process.stdout.write(flags() + '\n');
}

/** One line per runtime: built, or why not and how to fix it. */
function plan() {
  const py = findPython();
  const rb = findRuby();
  const why = (x) => x.missing ?? x.problems.join('; ');
  return {
    python: py.missing || py.problems.length ? { skip: why(py) } : { version: py.version, exe: py.exe },
    ruby: rb.missing || rb.problems.length ? { skip: why(rb) } : { version: rb.version, exe: rb.exe },
  };
}

function nodeGyp(args, env) {
  const gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  // Node's headers: an explicit npm_config_nodedir, else the installation of the
  // node running this script (Debian's /usr, nvm's and volta's prefixes all keep
  // them in <prefix>/include/node), else node-gyp's own lookup.
  const nodePrefix = dirname(dirname(process.execPath));
  const nodedir = process.env.npm_config_nodedir || (existsSync(join(nodePrefix, 'include', 'node', 'node_api.h')) ? nodePrefix : undefined);
  const all = [gyp, ...args, '-j', '2'];
  if (nodedir) all.push(`--nodedir=${nodedir}`);
  return spawnSync(process.execPath, all, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } }).status;
}

function build(requireAll) {
  const toolchain = toolchainProblems();
  if (toolchain.length) {
    process.stderr.write('weft: cannot build the native addon from source:\n');
    for (const p of toolchain) process.stderr.write(`  - ${p}\n`);
    process.exit(1);
  }
  const p = plan();
  for (const rt of ['python', 'ruby']) {
    if (p[rt].skip) process.stderr.write(`weft: not building the ${rt} runtime: ${p[rt].skip}\n`);
  }
  if (requireAll && (p.python.skip || p.ruby.skip)) {
    process.stderr.write('weft: --all needs both runtimes; fix the above and run `npm run build:native` again\n');
    process.exit(1);
  }
  const status = nodeGyp(['rebuild'], { WEFT_BUILD_PYTHON: p.python.skip ? '0' : '1', WEFT_BUILD_RUBY: p.ruby.skip ? '0' : '1' });
  if (status !== 0) {
    process.stderr.write('weft: node-gyp failed building the native addon; see the compiler output above\n');
    process.exit(status ?? 1);
  }
  // The runtime libraries carry their interpreter's version in their name, as the prebuilt ones do.
  const out = join(root, 'build', 'Release');
  for (const rt of ['python', 'ruby']) {
    if (p[rt].skip) continue;
    copyFileSync(join(out, `weft_${rt}.node`), join(out, `weft_${rt}-${p[rt].version}.node`));
    process.stdout.write(`weft: built the ${rt} runtime for ${rt} ${p[rt].version} (${p[rt].exe}): build/Release/weft_${rt}-${p[rt].version}.node\n`);
  }
}

const flag = process.argv.indexOf('--flags');
if (flag !== -1) printFlag(process.argv[flag + 1]);
else build(process.argv.includes('--all'));
