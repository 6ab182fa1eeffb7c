import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';

import { describeRuntime, describeSeedHandlers } from './runtime-suite.js';
import { repoRoot, stepPayload } from './helpers.js';

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

  describeSeedHandlers('python', get);
});
