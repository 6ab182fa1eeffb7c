// Finds the CPython and CRuby a build (or an install check) uses, and what it
// takes to embed each: headers, the shared library, version. Shared by
// build-native.mjs and install.mjs; runs with nothing but Node (no dev
// dependencies: it runs on a user's machine at npm install).
//
//   Python: WEFT_PYTHON (a python3.X executable), else the prefix of
//           WEFT_PYTHON_CONFIG (a python3-config), else `python3` on PATH.
//   Ruby:   WEFT_RUBY (a ruby executable), else `ruby` on PATH.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The versions weft's embedding code supports (README "Python and Ruby versions"). */
export const PYTHON_VERSIONS = ['3.9', '3.10', '3.11', '3.12', '3.13'];
export const RUBY_VERSIONS = ['3.0', '3.1', '3.2', '3.3', '3.4'];

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return null;
  }
}

function pythonExecutable() {
  if (process.env.WEFT_PYTHON) return process.env.WEFT_PYTHON;
  if (process.env.WEFT_PYTHON_CONFIG) {
    const prefix = run(process.env.WEFT_PYTHON_CONFIG, ['--prefix']);
    const exe = prefix && [join(prefix, 'bin', 'python3'), join(prefix, 'bin', 'python')].find((p) => existsSync(p));
    if (exe) return exe;
  }
  return 'python3';
}

const PY_PROBE = `import json,sys,sysconfig as s
v=s.get_config_var
print(json.dumps({"version":"%d.%d"%sys.version_info[:2],"full":sys.version.split()[0],"home":sys.base_prefix,
"include":s.get_paths()["include"],"platinclude":s.get_paths()["platinclude"],"libdir":v("LIBDIR"),
"ldversion":v("LDVERSION") or "%d.%d"%sys.version_info[:2],"soname":v("INSTSONAME"),"shared":v("Py_ENABLE_SHARED")==1}))`;

/**
 * The Python to embed, or { missing } saying why there is none. `problems`
 * lists what stops building against it (headers, no shared library).
 */
export function findPython() {
  const exe = pythonExecutable();
  const out = run(exe, ['-c', PY_PROBE]);
  if (!out) {
    return {
      missing: `no Python found (tried ${exe}${process.env.WEFT_PYTHON ? ', from WEFT_PYTHON' : ' on PATH'}): install CPython 3.9-3.13 (Debian: apt-get install -y python3) or set WEFT_PYTHON=/path/to/python3.X`,
    };
  }
  const py = { exe, ...JSON.parse(out) };
  py.lib = join(py.libdir, py.soname);
  const problems = [];
  if (!PYTHON_VERSIONS.includes(py.version))
    problems.push(`${exe} is Python ${py.full}; weft embeds CPython ${PYTHON_VERSIONS[0]}-${PYTHON_VERSIONS.at(-1)} (set WEFT_PYTHON to one of those)`);
  if (!py.shared)
    problems.push(
      `Python at ${py.home} was built without --enable-shared, so there is no libpython to embed: rebuild it with PYTHON_CONFIGURE_OPTS=--enable-shared`,
    );
  py.runProblems = [...problems];
  if (!existsSync(join(py.include, 'Python.h')))
    problems.push(`Python ${py.version}'s headers are missing (${join(py.include, 'Python.h')}): apt-get install -y python${py.version}-dev (or python3-dev)`);
  py.problems = problems;
  return py;
}

const RB_PROBE = `c=RbConfig::CONFIG
dirs=[c["libdir"],c["archlibdir"]].compact
lib=dirs.map{|d|File.join(d,c["LIBRUBY_SO"].to_s)}.find{|p|File.exist?(p)}
require "json"
print JSON.generate({version: c["MAJOR"]+"."+c["MINOR"], full: RUBY_VERSION, hdrdir: c["rubyhdrdir"], archhdrdir: c["rubyarchhdrdir"],
libdir: c["libdir"], soname: c["LIBRUBY_SONAME"] || c["LIBRUBY_SO"], lib: lib, soname_lib: c["RUBY_SO_NAME"], shared: c["ENABLE_SHARED"]=="yes"})`;

/** The Ruby to embed, or { missing }; `problems` as for findPython. */
export function findRuby() {
  const exe = process.env.WEFT_RUBY || 'ruby';
  const out = run(exe, ['-e', RB_PROBE]);
  if (!out) {
    return {
      missing: `no Ruby found (tried ${exe}${process.env.WEFT_RUBY ? ', from WEFT_RUBY' : ' on PATH'}): install CRuby 3.0-3.4 (Debian: apt-get install -y ruby) or set WEFT_RUBY=/path/to/ruby`,
    };
  }
  const rb = { exe, ...JSON.parse(out) };
  const problems = [];
  if (!RUBY_VERSIONS.includes(rb.version))
    problems.push(`${exe} is Ruby ${rb.full}; weft embeds CRuby ${RUBY_VERSIONS[0]}-${RUBY_VERSIONS.at(-1)} (set WEFT_RUBY to one of those)`);
  if (!rb.shared) problems.push(`Ruby at ${exe} was built without --enable-shared, so there is no libruby to embed: rebuild it with --enable-shared`);
  rb.runProblems = [...problems];
  if (!existsSync(join(rb.hdrdir, 'ruby.h')))
    problems.push(`Ruby ${rb.version}'s headers are missing (${join(rb.hdrdir, 'ruby.h')}): apt-get install -y ruby-dev (or ruby${rb.version}-dev)`);
  rb.problems = problems;
  return rb;
}

/** What stops compiling anything: the C++ toolchain. */
export function toolchainProblems() {
  const problems = [];
  if (!run('g++', ['--version'])) problems.push('g++ (the C++ compiler) was not found: apt-get install -y g++ make');
  if (!run('make', ['--version'])) problems.push('make was not found: apt-get install -y make');
  return problems;
}
