#!/usr/bin/env node
// The package's install step (package.json "install"). It installs nothing
// system-wide and never runs apt-get: it checks, per runtime, that this
// machine can run it, prints what is missing with the command that gets it,
// builds from source only what has no prebuilt binary (when a compiler and the
// headers are there), and succeeds when the core addon loads: TypeScript
// handlers need nothing more. In a checkout (src/ present) it builds
// everything from source instead, as developers need (README "Develop weft").
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { findPython, findRuby, toolchainProblems } from './lib/interpreters.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const platform = `${process.platform}-${process.arch}`;
const release = join(root, 'build', 'Release');
const prebuilt = join(root, 'prebuilds', platform);
const say = (line) => process.stdout.write(`weft: ${line}\n`);

function buildFromSource(args = []) {
  return spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs'), ...args], { cwd: root, stdio: 'inherit' }).status === 0;
}

function loadCore() {
  for (const dir of [release, prebuilt]) {
    const path = join(dir, 'weft_bridge.node');
    if (!existsSync(path)) continue;
    try {
      return { addon: createRequire(import.meta.url)(path), path };
    } catch (err) {
      say(`cannot load ${path}: ${err.message}`);
    }
  }
  return null;
}

/** The runtime library for this interpreter version, source build first (as the loader picks it). */
function runtimeFile(runtime, version) {
  const file = `weft_${runtime}-${version}.node`;
  return [release, prebuilt].map((d) => join(d, file)).find((p) => existsSync(p));
}

/** Tries attach() in this process: proves the runtime library and the interpreter's library load. */
function tryAttach(addon, runtime, found) {
  const path = runtimeFile(runtime, found.version);
  if (!path) return { ok: false, why: `no runtime library for ${runtime} ${found.version} in this package` };
  try {
    addon.attach(runtime === 'python' ? 0 : 1, path, found.lib ? [found.lib] : []);
    return { ok: true, path };
  } catch (err) {
    return { ok: false, why: err.message };
  }
}

function checkout() {
  // A developer's clone: build both runtimes from source (scripts/setup-dev.sh installs what they need).
  if (!buildFromSource(['--all'])) process.exit(1);
}

function installed() {
  let core = existsSync(join(prebuilt, 'weft_bridge.node')) ? loadCore() : null;
  if (!core) {
    say(`no prebuilt addon loads on ${platform}; building it from source`);
    if (!buildFromSource()) {
      say('native/TypeScript handlers: NOT available: the addon could not be built (see above); install g++ and make, then `npm rebuild @weft-engine/weft`');
      process.exit(1);
    }
    core = loadCore();
    if (!core) process.exit(1);
  }
  say(`native/TypeScript handlers: ready (${core.path.replace(root + '/', '')})`);
  const finders = { python: findPython, ruby: findRuby };
  for (const runtime of ['python', 'ruby']) {
    let found = finders[runtime]();
    if (found.missing) {
      say(`${runtime} handlers: not available: ${found.missing}`);
      continue;
    }
    if (found.runProblems.length) {
      say(`${runtime} handlers: not available: ${found.runProblems.join('; ')}`);
      continue;
    }
    let r = tryAttach(core.addon, runtime, found);
    if (!r.ok && !runtimeFile(runtime, found.version)) {
      const blockers = [...toolchainProblems(), ...found.problems];
      if (blockers.length) {
        say(
          `${runtime} handlers: not available: no prebuilt runtime for ${runtime} ${found.version} (${found.exe}), and building one needs: ${blockers.join('; ')}; then run \`npm rebuild @weft-engine/weft\``,
        );
        continue;
      }
      say(`${runtime} handlers: no prebuilt runtime for ${runtime} ${found.version}; building one from source`);
      if (buildFromSource()) {
        found = finders[runtime]();
        say(`${runtime} handlers: built; they load in the next process (this one already holds the prebuilt core)`);
        continue;
      }
      r = { ok: false, why: 'the source build failed (see above)' };
    }
    if (r.ok) say(`${runtime} handlers: ready (${runtime} ${found.full}, ${found.exe})`);
    else say(`${runtime} handlers: not available: ${r.why}`);
  }
}

if (process.env.WEFT_SKIP_INSTALL_CHECK === '1') say('WEFT_SKIP_INSTALL_CHECK=1: not checking the runtimes');
else if (existsSync(join(root, 'src')) && existsSync(join(root, 'native'))) checkout();
else installed();
