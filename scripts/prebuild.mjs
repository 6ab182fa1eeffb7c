#!/usr/bin/env node
// Puts the addon built in build/Release (npm run build:native) into
// prebuilds/<platform>-<arch>/, which the package ships (package.json
// "prepack" runs this): the core and a runtime library per interpreter
// version, so users need no compiler. Refuses to pack without all three.
//
// WEFT_PREBUILD_PYTHONS="/path/python3.9 /path/python3.12 ..." adds a Python
// runtime library for each of those Pythons (each built in a scratch copy of
// the sources with only that runtime enabled), so one package serves them all.
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { findPython } from './lib/interpreters.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const release = join(root, 'build', 'Release');
const out = join(root, 'prebuilds', `${process.platform}-${process.arch}`);

const built = existsSync(release) ? readdirSync(release).filter((f) => /^weft_(bridge|python-[\d.]+|ruby-[\d.]+)\.node$/.test(f)) : [];
const missing = ['weft_bridge.node', 'weft_python-', 'weft_ruby-'].filter((p) => !built.some((f) => f.startsWith(p)));
if (missing.length) {
  process.stderr.write(`prebuild: build/Release lacks ${missing.join(', ')}; run \`npm run build:native\` first (it needs both runtimes)\n`);
  process.exit(1);
}
rmSync(join(root, 'prebuilds'), { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const f of built) copyFileSync(join(release, f), join(out, f));

/** Builds weft_python.node for one more Python in a scratch copy and adds it. */
function addPython(exe) {
  process.env.WEFT_PYTHON = exe;
  const py = findPython();
  if (py.missing || py.problems.length) throw new Error(`prebuild: cannot build for ${exe}: ${py.missing ?? py.problems.join('; ')}`);
  const scratch = mkdtempSync(join(tmpdir(), 'weft-prebuild-'));
  for (const p of ['binding.gyp', 'native', 'scripts', 'node_modules', 'package.json']) {
    if (p === 'node_modules') spawnSync('ln', ['-s', join(root, p), join(scratch, p)]);
    else cpSync(join(root, p), join(scratch, p), { recursive: true });
  }
  const r = spawnSync(process.execPath, [join(scratch, 'scripts', 'build-native.mjs')], {
    cwd: scratch,
    stdio: 'inherit',
    env: { ...process.env, WEFT_PYTHON: exe, WEFT_RUBY: '/nonexistent-ruby-skip' },
  });
  if (r.status !== 0) throw new Error(`prebuild: the build for ${exe} failed`);
  copyFileSync(join(scratch, 'build', 'Release', `weft_python-${py.version}.node`), join(out, `weft_python-${py.version}.node`));
  rmSync(scratch, { recursive: true, force: true });
}
for (const exe of (process.env.WEFT_PREBUILD_PYTHONS ?? '').split(/\s+/).filter(Boolean)) addPython(exe);
process.stdout.write(`prebuild: ${out.replace(root + '/', '')}: ${readdirSync(out).sort().join(' ')}\n`);
