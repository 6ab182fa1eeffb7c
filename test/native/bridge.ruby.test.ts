import { expect, it } from 'vitest';

import { describeRuntime, describeSeedHandlers } from './runtime-suite.js';
import { stepPayload } from './helpers.js';

describeRuntime('ruby', (get) => {
  const call = async (handler: string) => get().dispatch('ruby', { handler, payload: stepPayload(), timeoutMs: 10_000 });

  it('has a fully initialised core (ruby_options: prelude, Set, GC, pack, UTF-8, json)', async () => {
    const r = await call('probe.runtime_facts');
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    expect(JSON.parse(r.json)).toMatchObject({ class_works: 'Integer', set: 2, pack: 'A', encoding: 'UTF-8', version: expect.stringMatching(/^3\.1\./) });
  });

  it.each([
    ['a lone high surrogate before a NUL (json 2.6 merged them into U+10000)', { s: '\ud800\u0000' }],
    ['a lone high surrogate (json 2.6 read it as "?")', { s: '\ud800 tail' }],
    ['a low surrogate before a high one (json 2.6 raised a retryable ParserError)', { '\udc00\ud800': 0 }],
  ])('refuses a step holding %s for good, instead of changing it', async (_what, context) => {
    const r = await get().dispatch('ruby', { handler: 'probe.echo', payload: stepPayload(context), timeoutMs: 10_000 });
    if (r.ok) throw new Error(`expected an error, got ${r.json}`);
    expect(r.error).toMatchObject({ class: 'Weft::UnreadableStep', kind: 'raised', permanent: true });
    expect(r.error.message).toBe(
      "this step holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair), which Ruby's JSON parser would read wrongly; weft never stores such values",
    );
  });

  it('refuses a step nested deeper than the limit plus the step envelope for good, saying so', async () => {
    let context: unknown = 1;
    for (let i = 0; i < 66; i++) context = { k: context }; // 67 levels with the step object
    const r = await get().dispatch('ruby', { handler: 'probe.echo', payload: stepPayload(context), timeoutMs: 10_000 });
    if (r.ok) throw new Error(`expected an error, got ${r.json}`);
    expect(r.error).toMatchObject({ class: 'Weft::UnreadableStep', kind: 'raised', permanent: true });
    expect(r.error.message).toBe(
      "Ruby's JSON parser cannot read this step (JSON::NestingError: nesting of 67 is too deep); it holds a value weft does not store (nested deeper than 64 levels, or a lone UTF-16 surrogate)",
    );
  });

  it('still reads escaped surrogate pairs, and an escaped backslash before "ud800"', async () => {
    // JSON.stringify writes a pair as the character itself: escape it by hand.
    const payload = stepPayload({ emoji: 'EMOJI', literal: '\\ud800' }).replace('"EMOJI"', '"\\ud83d\\ude00"');
    expect(payload).toContain('"emoji":"\\ud83d\\ude00"');
    const r = await get().dispatch('ruby', { handler: 'probe.echo', payload, timeoutMs: 10_000 });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    expect(JSON.parse(r.json)).toEqual({ emoji: '😀', literal: '\\ud800' });
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

  it('keeps Ruby threads started by a handler running between steps (GVL released while idle)', async () => {
    expect((await call('probe.start_thread')).ok).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const r = await call('probe.ticks');
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    expect(JSON.parse(r.json)).toBeGreaterThan(5);
  });

  it('a handler calling exit fails the step with SystemExit and leaves the process running', async () => {
    const r = await call('probe.exit');
    if (r.ok) throw new Error('expected an error');
    expect(r.error.class).toBe('SystemExit');
    expect((await call('probe.ok')).ok).toBe(true);
  });

  it('survives GC.stress across calls (kept objects are registered with the GC)', async () => {
    const on = await get().dispatch('ruby', { handler: 'probe.gc_stress', payload: stepPayload({ on: true }), timeoutMs: 30_000 });
    expect(on.ok && JSON.parse(on.json)).toBe(true);
    try {
      for (let i = 0; i < 5; i++) {
        const r = await get().dispatch('ruby', { handler: 'probe.unicode', payload: stepPayload({ text: `ünï ${i}` }), timeoutMs: 30_000 });
        if (!r.ok) throw new Error(JSON.stringify(r.error));
        expect(JSON.parse(r.json).text).toBe(`ünï ${i}`);
      }
      const e = await call('probe.boom');
      expect(!e.ok && e.error.class).toBe('ArgumentError');
    } finally {
      await get().dispatch('ruby', { handler: 'probe.gc_stress', payload: stepPayload({ on: false }), timeoutMs: 30_000 });
    }
  });

  describeSeedHandlers('ruby', get);
});
