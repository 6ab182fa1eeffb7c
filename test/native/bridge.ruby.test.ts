import { expect, it } from 'vitest';

import { describeRuntime, describeSeedHandlers } from './runtime-suite.js';
import { stepPayload } from './helpers.js';

describeRuntime('ruby', (get) => {
  const call = async (handler: string) => get().dispatch('ruby', { handler, payload: stepPayload(), timeoutMs: 10_000 });

  it('has a fully initialised core (ruby_options: prelude, Set, GC, pack, UTF-8, json)', async () => {
    const r = await call('probe.runtime_facts');
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    expect(JSON.parse(r.json)).toMatchObject({ class_works: 'Integer', set: 2, pack: 'A', encoding: 'UTF-8', version: '3.1.2' });
  });

  it('reads the message of a NameError raised from a C call (error_highlight disabled)', async () => {
    const r = await call('probe.name_error');
    if (r.ok) throw new Error('expected an error');
    expect(r.error.class).toBe('NameError');
    expect(r.error.message).toContain("undefined local variable or method `undefined_local_or_method_xyz'");
  });

  it('runs backticks (SIGCHLD reaches Ruby)', async () => {
    const r = await call('probe.backticks');
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    expect(JSON.parse(r.json)).toBe('hi:0');
  });

  describeSeedHandlers('ruby', get);
});
