/**
 * The behaviour every dispatch target must show, run once per runtime by
 * bridge.python.test.ts, bridge.ruby.test.ts and bridge.typescript.test.ts.
 * Each of those files runs in its own vitest fork (one process), which is
 * what an interpreter needs: it can be initialised once per process.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { openBridge, type AddonBridge, type BridgeResult, type BridgeRuntime } from '../../src/bridge/index.js';
import { probeHandlers } from './fixtures/ts-handlers.js';
import { fixtures, repoRoot, sleep, stepPayload } from './helpers.js';

const DEFAULTS = { failureThreshold: 1000, successThreshold: 2, cooldownMs: 5000, slowCallMs: 0, graceMs: 2000 };

function ok(r: BridgeResult): unknown {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r.error)}`);
  return JSON.parse(r.json);
}
function err(r: BridgeResult) {
  if (r.ok) throw new Error(`expected an error, got ${r.json}`);
  return r.error;
}

export function describeRuntime(runtime: BridgeRuntime, extra?: (get: () => AddonBridge) => void): void {
  const seeded = runtime !== 'typescript';
  let bridge: AddonBridge;
  let handlers: string[] = [];
  const call = (handler: string, context: unknown = {}, timeoutMs = 10_000, more: Record<string, unknown> = {}) =>
    bridge.dispatch(runtime, { handler, payload: stepPayload(context, more), timeoutMs });

  describe(`bridge: ${runtime}`, () => {
    beforeAll(async () => {
      bridge = openBridge();
      if (runtime === 'typescript') {
        ({ handlers } = await bridge.registerTypescriptHandlers(probeHandlers));
      } else {
        ({ handlers } = await bridge.load(runtime, {
          handlersDir: [join(fixtures, 'handlers', runtime), join(repoRoot, 'handlers', runtime)],
        }));
      }
      bridge.configure(runtime, DEFAULTS);
    });

    it('loads the handlers and lists their keys', () => {
      expect(handlers).toContain('probe.ok');
      expect(handlers).toContain('probe.class_handler');
      if (seeded) expect(handlers).toEqual(expect.arrayContaining(['linear.square', 'diamond.end', 'csv.aggregate', 'approval.route']));
    });

    it('runs a handler and passes the step fields through', async () => {
      expect(ok(await call('probe.ok'))).toEqual({ language: runtime, step_name: 'probe_step', attempt: 1, sum: 6 });
      expect(ok(await call('probe.class_handler', { n: 21 }))).toBe(42);
    });

    it('keeps class, message and backtrace of a raised error, retryable', async () => {
      const e = err(await call('probe.boom', { why: 'disk on fire' }));
      expect(e.language).toBe(runtime);
      expect(e.class).toBe({ python: 'ValueError', ruby: 'ArgumentError', typescript: 'TypeError' }[runtime]);
      expect(e.message).toBe('boom: disk on fire');
      expect(e.kind).toBe('raised');
      expect(e.permanent).toBe(false);
      const inner = { python: /probe\.py:\d+:in _inner/, ruby: /probe\.rb:\d+:in `probe_inner'/, typescript: /inner .*ts-handlers\.ts:\d+/ }[runtime];
      expect(e.backtrace[0]).toMatch(inner);
    });

    it('marks PermanentError as permanent', async () => {
      const e = err(await call('probe.permanent'));
      expect(e.class).toMatch(/PermanentError$/);
      expect(e.message).toBe('cannot ever work');
      expect(e.permanent).toBe(true);
    });

    it('rejects a non-JSON return with a message naming the handler and the type', async () => {
      const e = err(await call('probe.bad_return'));
      expect(e.kind).toBe('invalid_return');
      expect(e.permanent).toBe(true);
      expect(e.message).toMatch(/^handler "probe\.bad_return" returned a [Ss]et, which is not JSON; return /);
      const n = err(await call('probe.nested_bad_return'));
      expect(n.kind).toBe('invalid_return');
      expect(n.message).toContain('"probe.nested_bad_return"');
    });

    it('rejects NaN as not JSON', async () => {
      const e = err(await call('probe.nan'));
      expect(e.kind).toBe('invalid_return');
      expect(e.message).toMatch(/^handler "probe\.nan" returned a (float|Float|number) NaN/);
    });

    it('answers an unknown handler key with the known keys', async () => {
      const e = err(await call('probe.does_not_exist'));
      expect(e.kind).toBe('handler_not_found');
      expect(e.message).toContain('"probe.does_not_exist"');
      expect(e.message).toContain('probe.ok');
    });

    it('carries unicode both ways', async () => {
      const text = 'Grüße, 世界! 🎉 naïve — ok';
      const out = ok(await call('probe.unicode', { text })) as Record<string, unknown>;
      expect(out.text).toBe(text);
      expect(out.reversed).toBe([...text].reverse().join(''));
      expect(out.length).toBe([...text].length);
      expect(out.extra).toBe('日本語 ✓ 🎉 é');
    });

    it('handles a 10 MB context', async () => {
      const blob = 'x'.repeat(10 * 1024 * 1024 - 5) + 'tail!';
      const out = ok(await call('probe.size', { blob }, 60_000)) as Record<string, unknown>;
      expect(out).toEqual({ bytes: blob.length, tail: 'tail!' });
    });

    it('returns decision and batches in the shared shapes', async () => {
      expect(ok(await call('probe.decision'))).toEqual({ $weft: 'decision', steps: ['a', 'b'] });
      expect(ok(await call('probe.batches'))).toEqual({ $weft: 'batches', cursors: [{ start: 0 }, { start: 10 }] });
    });

    it('times out a hanging handler at once and stays healthy', async () => {
      const before = bridge.stats(runtime).timedOut;
      const e = err(await call('probe.spin', {}, 150));
      expect(e.kind).toBe('timeout');
      expect(e.permanent).toBe(false);
      expect(e.message).toContain('150 ms');
      expect(bridge.stats(runtime).timedOut).toBe(before + 1);
      // the interrupted runtime serves the next calls normally
      for (let i = 0; i < 3; i++) expect(ok(await call('probe.ok'))).toMatchObject({ sum: 6 });
      expect(bridge.isBroken(runtime)).toBe(false);
    });

    it('never lets a late interrupt hit the next job', async () => {
      // The handler outlives its timeout, then returns; the jobs queued behind it must all succeed.
      const late = call('probe.sleep_then_return', { seconds: 0.4 }, 100);
      const next = Array.from({ length: 5 }, () => call('probe.ok'));
      expect(err(await late).kind).toBe('timeout');
      for (const r of await Promise.all(next)) expect(ok(r)).toMatchObject({ sum: 6 });
      await sleep(100);
      expect(ok(await call('probe.ok'))).toMatchObject({ sum: 6 });
    });

    it('opens the breaker, rejects, half-opens and closes', async () => {
      bridge.resetBreaker(runtime);
      bridge.configure(runtime, { failureThreshold: 3, cooldownMs: 1000, successThreshold: 2 });
      for (let i = 0; i < 3; i++) expect(err(await call('probe.flaky', { fail: true })).kind).toBe('raised');
      expect(bridge.stats(runtime).breaker.state).toBe('open');
      const rejectedBefore = bridge.stats(runtime).rejectedByBreaker;
      const completedBefore = bridge.stats(runtime).completed;
      const rejected = err(await call('probe.flaky', { fail: false }));
      expect(rejected.kind).toBe('circuit_open');
      expect(rejected.permanent).toBe(false);
      expect(bridge.stats(runtime).rejectedByBreaker).toBe(rejectedBefore + 1);
      expect(bridge.stats(runtime).completed).toBe(completedBefore); // it did not run
      await sleep(1050);
      // a failing probe re-opens it
      expect(err(await call('probe.flaky', { fail: true })).kind).toBe('raised');
      expect(bridge.stats(runtime).breaker.state).toBe('open');
      await sleep(1050);
      expect(ok(await call('probe.flaky', { fail: false }))).toBe('fine');
      expect(bridge.stats(runtime).breaker.state).toBe('half_open');
      expect(ok(await call('probe.flaky', { fail: false }))).toBe('fine');
      expect(bridge.stats(runtime).breaker.state).toBe('closed');
      bridge.configure(runtime, DEFAULTS);
    });

    it('opens the breaker on calls slower than the latency threshold', async () => {
      bridge.resetBreaker(runtime);
      bridge.configure(runtime, { failureThreshold: 2, slowCallMs: 50, cooldownMs: 60_000 });
      expect(ok(await call('probe.sleep_then_return', { seconds: 0.1 }))).toBe('late');
      expect(bridge.stats(runtime).breaker.state).toBe('closed');
      expect(ok(await call('probe.sleep_then_return', { seconds: 0.1 }))).toBe('late');
      expect(bridge.stats(runtime).breaker.state).toBe('open');
      expect(err(await call('probe.ok')).kind).toBe('circuit_open');
      bridge.resetBreaker(runtime);
      bridge.configure(runtime, DEFAULTS);
      expect(ok(await call('probe.ok'))).toMatchObject({ sum: 6 });
    });

    if (runtime !== 'typescript') {
      it('interrupts a handler that rescues ordinary exceptions (the timeout is not one)', async () => {
        bridge.configure(runtime, { graceMs: 1500 });
        try {
          expect(err(await call('probe.swallow_exception', {}, 150)).kind).toBe('timeout');
          const after = await call('probe.ok');
          expect(ok(after)).toMatchObject({ sum: 6 }); // it was interrupted: the runtime is free again
          expect(bridge.isBroken(runtime)).toBe(false);
        } finally {
          bridge.configure(runtime, { graceMs: DEFAULTS.graceMs });
        }
      });

      it('answers queue_full at once when the bounded queue is full', async () => {
        bridge.configure(runtime, { queueCapacity: 1 });
        const before = bridge.stats(runtime).rejectedQueueFull;
        try {
          const busy = call('probe.busy', { seconds: 0.3 });
          const rest = await Promise.all(Array.from({ length: 6 }, () => call('probe.ok')));
          const kinds = rest.map((r) => (r.ok ? 'ok' : r.error.kind));
          const full = kinds.filter((k) => k === 'queue_full').length;
          expect(full).toBeGreaterThanOrEqual(4); // one may run, one may wait
          expect(kinds.every((k) => k === 'ok' || k === 'queue_full')).toBe(true);
          const e = rest.find((r) => !r.ok);
          expect(e && !e.ok && e.error.permanent).toBe(false);
          expect(bridge.stats(runtime).rejectedQueueFull - before).toBe(full);
          expect(ok(await busy)).toBe(true);
        } finally {
          bridge.configure(runtime, { queueCapacity: 4096 });
        }
      });

      it('never blocks the JS thread while a handler computes', async () => {
        let ticks = 0;
        const timer = setInterval(() => ticks++, 10);
        const started = Date.now();
        const r = await call('probe.busy', { seconds: 0.5 });
        clearInterval(timer);
        expect(ok(r)).toBe(true);
        expect(Date.now() - started).toBeGreaterThanOrEqual(490);
        // the event loop kept turning during the 500 ms the interpreter was busy
        expect(ticks).toBeGreaterThan(5);
      });
    }

    it('counts calls and fills the timing histograms', async () => {
      const s0 = bridge.stats(runtime);
      await Promise.all(Array.from({ length: 50 }, () => call('probe.ok')));
      const s = bridge.stats(runtime);
      expect(s.dispatched - s0.dispatched).toBe(50);
      expect(s.completed - s0.completed).toBe(50);
      expect(s.inFlight).toBe(0);
      for (const h of ['serialise', 'queueWait', 'run', 'return'] as const) {
        expect(s.histograms[h].count - s0.histograms[h].count).toBe(50);
        expect(s.histograms[h].counts.reduce((a, b) => a + b, 0)).toBe(s.histograms[h].count);
      }
      expect(s.phase).toBe('ready');
    });

    if (extra) extra(() => bridge);

    // Last: it leaves the runtime broken for the rest of this process.
    it('marks the runtime broken when a handler ignores its timeout past the grace period', async () => {
      bridge.configure(runtime, { graceMs: 300 });
      const events: string[] = [];
      bridge.onBroken((rt, reason) => events.push(`${rt}: ${reason}`));
      const e = err(await call('probe.stubborn', {}, 100));
      expect(e.kind).toBe('timeout');
      for (let i = 0; i < 100 && !bridge.isBroken(runtime); i++) await sleep(20);
      expect(bridge.isBroken(runtime)).toBe(true);
      expect(bridge.stats(runtime).brokenReason).toContain('probe.stubborn');
      const after = err(await call('probe.ok'));
      expect(after.kind).toBe('runtime_broken');
      expect(after.permanent).toBe(false);
      await sleep(50);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatch(new RegExp(`^${runtime}: handler "probe.stubborn" ignored its timeout`));
    });
  });
}

/** The seed workflows' arithmetic, identical in every language. */
export function describeSeedHandlers(runtime: 'python' | 'ruby', get: () => AddonBridge): void {
  const run = async (handler: string, context: unknown, deps: Record<string, unknown> = {}, batch: unknown = null) => {
    const r = await get().dispatch(runtime, { handler, payload: stepPayload(context, { dependency_results: deps, batch }), timeoutMs: 10_000 });
    return ok(r);
  };

  it('linear: each step squares its parent, exactly', async () => {
    const s1 = await run('linear.square', { even_number: 6 });
    const s2 = await run('linear.square', { even_number: 6 }, { linear_step_1: s1 });
    const s3 = await run('linear.square', { even_number: 6 }, { linear_step_2: s2 });
    const s4 = await run('linear.square', { even_number: 6 }, { linear_step_3: s3 });
    expect([s1, s2, s3, s4]).toEqual([36, 1296, 1679616, 2821109907456]);
  });

  it('diamond: branches square the start, the end multiplies them and squares (big ints as strings)', async () => {
    const start = await run('diamond.start', { even_number: 6 });
    const b = await run('diamond.branch', {}, { diamond_start: start });
    const c = await run('diamond.branch', {}, { diamond_start: start });
    const end = await run('diamond.end', {}, { diamond_branch_b: b, diamond_branch_c: c });
    expect([start, b, c]).toEqual([36, 1296, 1296]);
    expect(end).toBe((1296n * 1296n) ** 2n <= 2n ** 53n - 1n ? Number((1296n * 1296n) ** 2n) : String((1296n * 1296n) ** 2n));
    // a parent result beyond 2^53 arrives as a decimal string and stays exact
    const big = await run('complex.square_parent', {}, { p: '2821109907456' });
    expect(big).toBe((2821109907456n ** 2n).toString());
    expect(await run('tree.multiply_square', {}, { a: 2, b: '3' })).toBe(36);
    expect(await run('tree.root', { even_number: 4 })).toBe(16);
    expect(await run('complex.init', { even_number: 2 })).toBe(4);
  });

  it('rejects a bad even_number as a permanent error', async () => {
    const r = await get().dispatch(runtime, { handler: 'linear.square', payload: stepPayload({ even_number: 7 }), timeoutMs: 5000 });
    expect(err(r).permanent).toBe(true);
    expect(err(r).message).toContain('even_number');
  });

  it('approval: routes by amount', async () => {
    expect(await run('approval.route', { amount: 500 })).toEqual({ $weft: 'decision', steps: ['auto_approve'] });
    expect(await run('approval.route', { amount: 2500 })).toEqual({ $weft: 'decision', steps: ['manager_approval'] });
    expect(await run('approval.route', { amount: 9000 })).toEqual({ $weft: 'decision', steps: ['manager_approval', 'finance_review'] });
    const m = await run('approval.manager_approval', { amount: 9000 });
    const f = await run('approval.finance_review', { amount: 9000 });
    expect(await run('approval.finalize', { amount: 9000 }, { manager_approval: m, finance_review: f })).toEqual({
      approved: true,
      approvals: ['finance', 'manager'],
      amount: 9000,
    });
  });

  it('csv: analyze, process each batch, aggregate', async () => {
    const context = { csv_path: join(fixtures, 'products.csv'), batch_size: 4 };
    const plan = (await run('csv.analyze', context)) as { $weft: string; cursors: unknown[] };
    expect(plan.$weft).toBe('batches');
    expect(plan.cursors).toEqual([{ start: 0, end: 4 }, { start: 4, end: 8 }, { start: 8, end: 11 }]);
    const parts = [];
    for (const [i, cursor] of plan.cursors.entries()) {
      parts.push(await run('csv.process_batch', context, {}, { cursor, index: i + 1, total: plan.cursors.length, no_op: false }));
    }
    const agg = await run('csv.aggregate', context, { process_batch: parts });
    expect(agg).toEqual({
      total_products: 11,
      total_inventory_value: 8141.76, // sum of price x stock, checked by hand
      category_counts: { home: 3, kitchen: 4, sport: 4 },
      most_expensive_product: 'Espresso Machine',
      most_expensive_price: 349,
      average_rating: 4.3,
    });
  });
}
