/**
 * Where the native addon's files are and which runtime library serves the
 * interpreter on this machine. The addon is three files (binding.gyp): the
 * core weft_bridge.node, and weft_python-3.X.node / weft_ruby-3.Y.node, one
 * per interpreter version, attached only by a worker that runs that runtime.
 *
 * Looked for, in order: WEFT_BRIDGE_PATH (the core; its runtimes beside it),
 * build/Release/ (a source build: a checkout, or the package's fallback build
 * at install), prebuilds/<platform>-<arch>/ (shipped in the package).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { loadConfig } from '../shared/config.js';
import { packageRoot } from '../shared/paths.js';
import { BridgeLoadError } from './errors.js';

/** The directories that may hold the addon, most specific first. */
function addonDirs(): string[] {
  const root = packageRoot();
  const dirs = [join(root, 'build', 'Release'), join(root, 'prebuilds', `${process.platform}-${process.arch}`)];
  const explicit = loadConfig().bridgePath;
  return explicit ? [dirname(explicit), ...dirs] : dirs;
}

/** Path of the core addon: WEFT_BRIDGE_PATH, else the first build/Release or prebuilds/ that has one. */
export function addonPath(): string {
  const explicit = loadConfig().bridgePath;
  if (explicit) return explicit;
  const dirs = addonDirs();
  return dirs.map((d) => join(d, 'weft_bridge.node')).find((p) => existsSync(p)) ?? join(dirs[0]!, 'weft_bridge.node');
}

/** What attach() needs: the runtime library, and the interpreter library to load before it. */
export interface RuntimeLibrary {
  path: string;
  preload: string[];
  /** Python: its prefix, the embedded interpreter's home (load() passes it on). */
  home?: string;
}

interface Interpreter {
  version: string;
  lib: string;
  home?: string;
}

const PY_PROBE =
  'import json,os,sys,sysconfig as s;v=s.get_config_var;' +
  'print(json.dumps({"version":"%d.%d"%sys.version_info[:2],"home":sys.base_prefix,"lib":os.path.join(v("LIBDIR") or "",v("INSTSONAME") or "")}))';
const RB_PROBE =
  'c=RbConfig::CONFIG;require "json";' +
  'lib=[c["libdir"],c["archlibdir"]].compact.map{|d|File.join(d,c["LIBRUBY_SO"].to_s)}.find{|p|File.exist?(p)};' +
  'print JSON.generate({version: c["MAJOR"]+"."+c["MINOR"], lib: lib || c["LIBRUBY_SO"]})';

/** Asks the user's interpreter (WEFT_PYTHON / WEFT_RUBY, else python3 / ruby on PATH) what it is. */
function probe(runtime: 'python' | 'ruby'): Interpreter {
  const setting = runtime === 'python' ? 'WEFT_PYTHON' : 'WEFT_RUBY';
  const exe = loadConfig().interpreters[runtime] ?? (runtime === 'python' ? 'python3' : 'ruby');
  const r = spawnSync(exe, runtime === 'python' ? ['-c', PY_PROBE] : ['-e', RB_PROBE], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0 || !r.stdout) {
    const why = r.error ? r.error.message : (r.stderr || `exit code ${r.status}`).trim();
    throw new BridgeLoadError(
      `the ${runtime} runtime needs ${runtime === 'python' ? 'CPython 3.9-3.13' : 'CRuby 3.0-3.4'}, and ${exe} did not answer (${why}). ` +
        `Install it (Debian: apt-get install -y ${runtime === 'python' ? 'python3' : 'ruby'}) or set ${setting} to its executable.`,
    );
  }
  return JSON.parse(r.stdout) as Interpreter;
}

/**
 * The runtime library for the user's Python or Ruby, and for Python its
 * prefix, so the embedded interpreter finds its standard library wherever
 * that Python lives (Process environment untouched; WEFT_PYTHON_HOME still wins).
 */
export function runtimeLibrary(runtime: 'python' | 'ruby'): RuntimeLibrary {
  const found = probe(runtime);
  const file = `weft_${runtime}-${found.version}.node`;
  const path = addonDirs()
    .map((d) => join(d, file))
    .find((p) => existsSync(p));
  if (!path) {
    const have = addonDirs().flatMap((d) => (existsSync(d) ? readdirSync(d).filter((f) => f.startsWith(`weft_${runtime}-`)) : []));
    const setting = runtime === 'python' ? 'WEFT_PYTHON' : 'WEFT_RUBY';
    throw new BridgeLoadError(
      `no weft ${runtime} runtime for ${runtime} ${found.version} (looked for ${file} in ${addonDirs().join(', ')}; found ${have.join(', ') || 'none'}). ` +
        `Build one from source with that ${runtime}'s headers installed: \`npm rebuild @weft-engine/weft\` (in a checkout: \`npm run build:native\`), ` +
        `or set ${setting} to a ${runtime} that has one.`,
    );
  }
  return { path, preload: found.lib ? [found.lib] : [], home: found.home };
}
