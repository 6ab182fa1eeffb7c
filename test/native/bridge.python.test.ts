import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { describeRuntime, describeSeedHandlers } from './runtime-suite.js';
import { repoRoot, stepPayload, until } from './helpers.js';

// The home the addon was built with (what binding.gyp baked in).
const builtHome = execFileSync(process.execPath, [join(repoRoot, 'scripts', 'build-native.mjs'), '--flags', 'py-home'], {
  encoding: 'utf8',
}).trim();

describeRuntime('python', (get) => {
  it('loads C extension modules and the pinned stdlib (RTLD_GLOBAL, PyConfig.home)', async () => {
    const r = await get().dispatch('python', { handler: 'probe.runtime_facts', payload: stepPayload(), timeoutMs: 5000 });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    const facts = JSON.parse(r.json);
    expect(facts.c_scanner).toBe(true);
    expect(facts.c_scanstring).toBe(true);
    expect(facts.math_sqrt).toBe(4);
    expect(facts.version).toMatch(/^3\.11\./);
    expect(facts.prefix).toBe(process.env.WEFT_PYTHON_HOME || builtHome);
  });
  it('keeps Python threads started by a handler running between steps (GIL released while idle)', async () => {
    const call = (handler: string) => get().dispatch('python', { handler, payload: stepPayload(), timeoutMs: 5000 });
    const r0 = await call('probe.start_thread');
    expect(r0.ok).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const r1 = await call('probe.ticks');
    if (!r1.ok) throw new Error(JSON.stringify(r1.error));
    expect(JSON.parse(r1.json)).toBeGreaterThan(5);
  });

  it('a handler calling sys.exit() fails the step and leaves the process running', async () => {
    const r = await get().dispatch('python', { handler: 'probe.exit', payload: stepPayload(), timeoutMs: 5000 });
    if (r.ok) throw new Error('expected an error');
    expect(r.error.class).toBe('SystemExit');
    expect(r.error.message).toBe('3');
    const after = await get().dispatch('python', { handler: 'probe.ok', payload: stepPayload(), timeoutMs: 5000 });
    expect(after.ok).toBe(true);
  });

  describe("a single time.sleep(600) on a pool thread is interrupted (weft's interruptible sleep)", () => {
    let n = 0;
    const started = () => join(tmpdir(), `weft-long-sleep-${process.pid}-${++n}`);
    const seen = async () => {
      const r = await get().dispatch('python', { handler: 'probe.cancel_seen', payload: stepPayload(), timeoutMs: 5000 });
      return r.ok ? (JSON.parse(r.json) as string[]) : [];
    };

    it('by a cancel: the handler sees weft.Cancelled, and the next call runs', async () => {
      const path = started();
      const before = (await seen()).length;
      const running = get().dispatch('python', { handler: 'probe.long_sleep', payload: stepPayload({ started: path }), timeoutMs: 600_000, key: 77 });
      await until('the handler to start', () => existsSync(path));
      expect(get().cancel('python', 77)).toBe(true);
      expect(await running).toMatchObject({ ok: false, error: { kind: 'cancelled' } });
      const after = await until('the handler to see the interrupt', async () => ((await seen()).length > before ? seen() : undefined));
      expect(after.slice(before)).toEqual(['Cancelled']);
      expect(get().isBroken('python')).toBe(false);
      rmSync(path, { force: true });
    });

    it('by a timeout: the handler sees weft.HandlerTimeout, and the next call runs', async () => {
      const path = started();
      const before = (await seen()).length;
      const r = await get().dispatch('python', { handler: 'probe.long_sleep', payload: stepPayload({ started: path }), timeoutMs: 100 });
      expect(r).toMatchObject({ ok: false, error: { kind: 'timeout' } });
      const after = await until('the handler to see the interrupt', async () => ((await seen()).length > before ? seen() : undefined));
      expect(after.slice(before)).toEqual(['HandlerTimeout']);
      expect(get().isBroken('python')).toBe(false);
      rmSync(path, { force: true });
    });
  });

  describeSeedHandlers('python', get);
});
