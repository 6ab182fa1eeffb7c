/**
 * Process-level behaviour of the bridge (bridge-findings pitfalls 1-4, 10-11,
 * 16, 17, 19): each case runs in a fresh child `node` process, because an
 * interpreter can be initialised once per process and signals/exit must be
 * observed from outside. Children are killed by pid after each test.
 */
import { afterEach, describe, expect, it } from 'vitest';

import { killChildren, lastJson, runFixture } from './helpers.js';

afterEach(() => killChildren());

describe('bridge: process', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} kills a process with both interpreters loaded (by signal, not a spin)`, async () => {
      const r = await runFixture('signal.mts', {
        timeoutMs: 20_000,
        onLine: (line, child) => {
          if (line.includes('"ready"')) process.kill(child.pid!, signal);
        },
      });
      expect(r.stdout).toContain('"ready":true');
      expect(r.timedOut).toBe(false);
      expect(r.signal).toBe(signal);
    });
  }

  it('WebAssembly out-of-bounds still throws RuntimeError after Ruby is loaded; Ruby stack overflow is still SystemStackError', async () => {
    const r = await runFixture('wasm.mts', { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson(r);
    for (const k of ['before', 'after', 'again', 'afterDeep']) expect(out[k]).toBe('RuntimeError: memory access out of bounds');
    expect(out.deep).toEqual({ ok: true, json: '"SystemStackError: SystemStackError"' });
    expect(out.stillOk).toBe(true);
  });

  it('a Python handler that segfaults on a pool thread: the process dies of SIGSEGV, leaving the tracebacks that name the handler', async () => {
    const r = await runFixture('crash.mts', { args: ['python'] });
    expect(r.signal).toBe('SIGSEGV');
    expect(r.stdout).not.toContain('survived');
    expect(r.stderr).toContain('Fatal Python error: Segmentation fault');
    expect(r.stderr).toMatch(/crash-handlers\/python\/crashing\.py", line \d+ in segfault/);
  });

  it("a Ruby handler that segfaults on a pool thread: Ruby's report names the handler, and the process dies of the signal", async () => {
    const r = await runFixture('crash.mts', { args: ['ruby'] });
    expect(r.signal).not.toBeNull();
    expect(r.stdout).not.toContain('survived');
    expect(r.stderr).toContain('[BUG] Segmentation fault');
    expect(r.stderr).toMatch(/crash-handlers\/ruby\/crashing\.rb:\d+:in `block in <top \(required\)>'/);
  });

  it("Node's child_process and Ruby's backticks both work in the same process", async () => {
    const r = await runFixture('children.mts', { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson<{ nodeOk: boolean; rubyOut: string[] }>(r);
    expect(out.nodeOk).toBe(true);
    expect(out.rubyOut).toEqual(Array(24).fill('hi:0'));
  });

  it('Ruby backticks keep working when libuv installs and resets SIGCHLD (guard re-installs the chain)', async () => {
    const { spawn } = await import('node:child_process');
    const { join } = await import('node:path');
    const { fixtures } = await import('./helpers.js');
    // plain node, no tsx: its esbuild child would keep libuv's handler installed throughout
    const child = spawn(process.execPath, [join(fixtures, 'children-raw.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    clearTimeout(timer);
    expect(code, stderr).toBe(0);
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out.nodeOk).toBe(true);
    expect(out.rubyOut).toEqual(Array(13).fill('hi:0'));
    expect(out.info.sigchldReinstalls).toBeGreaterThan(0);
  });

  it('refuses to load in a worker_thread with a clear error, and the main thread keeps working', async () => {
    const r = await runFixture('worker-thread.mts', { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson<{ worker: { loaded: boolean; message: string }; mainStillWorks: boolean }>(r);
    expect(out.worker.loaded).toBe(false);
    expect(out.worker.message).toMatch(/already loaded by another Node environment.*never from a worker_thread/);
    expect(out.mainStillWorks).toBe(true);
  });

  it('process.exit() with both interpreters busy in handlers exits promptly with its code', async () => {
    const r = await runFixture('exit-busy.mts', { args: ['3'], timeoutMs: 20_000 });
    expect(r.stdout).toContain('exiting');
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(3);
  });

  it('an idle bridge does not keep Node alive (natural exit)', async () => {
    const r = await runFixture('natural-exit.mts', { timeoutMs: 20_000 });
    expect(r.timedOut).toBe(false);
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r)).toEqual({ ok: [true, true, true], outstanding: 0 });
  });

  it('Python, Ruby and TypeScript-through-the-bridge in one process under concurrent load', async () => {
    const r = await runFixture('concurrent.mts', { args: ['6000'], timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r)).toEqual({ n: 6000, wrong: 0, failed: 0, completed: [2000, 2000, 2000] });
  });

  it('a handler file that fails to load rejects load() with the foreign error', async () => {
    const r = await runFixture('load-errors.mts', { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson<Record<string, any>>(r);
    expect(out.python).toMatchObject({ name: 'HandlerLoadError', language: 'python', errorClass: 'SyntaxError' });
    expect(out.python.message).toMatch(/\/bad\.py:3: invalid syntax/);
    expect(out.ruby).toMatchObject({ name: 'HandlerLoadError', language: 'ruby', errorClass: 'ArgumentError' });
    expect(out.ruby.message).toContain('bad handler file');
    expect(out.ruby.backtrace[0]).toMatch(/bad\.rb:1/);
    expect(out.notLoaded).toBe('not_loaded');
    expect(out.second).toContain('already loaded in this process');
  });

  it('a wrong WEFT_PYTHON_HOME fails load() with a clear error and dispatch answers not_loaded', async () => {
    const r = await runFixture('bad-home.mts', { timeoutMs: 30_000, env: { WEFT_PYTHON_HOME: '/nonexistent-python-home' } });
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson<{ error: { name: string; errorClass: string; message: string }; dispatch: { kind: string; message: string } }>(r);
    expect(out.error.name).toBe('HandlerLoadError');
    expect(out.error.errorClass).toBe('PythonInitError');
    expect(out.error.message).toContain('/nonexistent-python-home');
    expect(out.error.message).toContain('WEFT_PYTHON_HOME');
    expect(out.dispatch.kind).toBe('not_loaded');
    expect(out.dispatch.message).toContain('failed to load');
  });

  it("loading Python and Ruby leaves Node's environment and argv alone (no C-locale coercion)", async () => {
    const r = await runFixture('locale.mts', { timeoutMs: 30_000, unsetEnv: ['LANG', 'LC_ALL', 'LC_CTYPE', 'LANGUAGE'] });
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r)).toEqual({
      before: { env: null, child: '[]' },
      after: { env: null, child: '[]' },
      untouched: { env: true, argv: true }, // Ruby's ruby_sysinit gets a fake argv too
      unicode: 'Grüße 🎉',
    });
  });
  // Memory growth under 100k calls per runtime is measured by `npm run soak` (bench/soak.ts), not here.
});
