import { expect, it } from 'vitest';

import { describeRuntime, describeSeedHandlers } from './runtime-suite.js';
import { stepPayload } from './helpers.js';

describeRuntime('python', (get) => {
  it('loads C extension modules and the pinned stdlib (RTLD_GLOBAL, PyConfig.home)', async () => {
    const r = await get().dispatch('python', { handler: 'probe.runtime_facts', payload: stepPayload(), timeoutMs: 5000 });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    const facts = JSON.parse(r.json);
    expect(facts.c_scanner).toBe(true);
    expect(facts.c_scanstring).toBe(true);
    expect(facts.math_sqrt).toBe(4);
    expect(facts.version).toBe('3.11.7');
    expect(facts.prefix).toBe(process.env.WEFT_PYTHON_HOME || '/root/.pyenv/versions/3.11.7');
  });
  describeSeedHandlers('python', get);
});
