/**
 * The behaviour every dispatch target must show, run once per runtime and
 * execution model by bridge.python.test.ts (plain handlers on a pool of
 * threads), bridge.python-async.test.ts (the same probes as `async def`
 * handlers on the event loop), bridge.ruby.test.ts (a pool of Ruby threads)
 * and bridge.typescript.test.ts. Each of those files runs in its own vitest
 * fork (one process), which is what an interpreter needs: it can be
 * initialised once per process.
 *
 * The pools have several threads, so a case that needs a call to wait in the
 * queue first occupies every slot (`occupy`): each thread of a pool, or, on
 * the event loop, the loop itself with a handler that computes without an
 * await.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { jsonDepthProblem, MAX_JSON_DEPTH } from '../../src/core/json-depth.js';
import { openBridge, type AddonBridge, type BridgeResult, type BridgeRuntime } from '../../src/bridge/index.js';
import { probeHandlers } from './fixtures/ts-handlers.js';
import { parseProducts, summarise } from '../../src/examples/products.js';
import { expectedCsvAggregate } from '../../src/benchmark/scenarios.js';
import { fixtures, repoRoot, sleep, stepPayload, until } from './helpers.js';

const DEFAULTS = { failureThreshold: 1000, successThreshold: 2, cooldownMs: 5000, slowCallMs: 0, graceMs: 2000 };

type Mode = 'dispatch' | 'call';
const MODES: Mode[] = ['dispatch', 'call'];

/** How the runtime under test runs its handlers. */
export type Model = 'threads' | 'async' | 'inline';

export interface SuiteOptions {
  model?: Model;
  /** Handler directories to load (python, ruby); default: the probes and the seed handlers. */
  handlersDir?: string[];
  /** Threads of the pool (python and ruby); default 4. */
  threads?: number;
}

function ok(r: BridgeResult): unknown {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r.error)}`);
  return JSON.parse(r.json);
}
function err(r: BridgeResult) {
  if (r.ok) throw new Error(`expected an error, got ${r.json}`);
  return r.error;
}

export function describeRuntime(runtime: BridgeRuntime, extra?: (get: () => AddonBridge) => void, options: SuiteOptions = {}): void {
  const seeded = runtime !== 'typescript';
  const model: Model = options.model ?? (runtime === 'typescript' ? 'inline' : 'threads');
  const threads = options.threads ?? 4;
  /** The class of what a handler sees when it is cancelled. */
  const cancelledClass = model === 'async' ? 'CancelledError' : { python: 'Cancelled', ruby: 'Weft::Cancelled', typescript: 'Cancelled' }[runtime];
  let bridge: AddonBridge;
  let handlers: string[] = [];
  let defaultSyncWaitUs = 0;
  const request = (handler: string, context: unknown = {}, timeoutMs = 10_000, more: Record<string, unknown> = {}) => ({
    handler,
    payload: stepPayload(context, more),
    timeoutMs,
  });
  const through =
    (mode: Mode) =>
    (handler: string, context: unknown = {}, timeoutMs = 10_000, more: Record<string, unknown> = {}) =>
      mode === 'dispatch'
        ? bridge.dispatch(runtime, request(handler, context, timeoutMs, more))
        : Promise.resolve(bridge.call(runtime, request(handler, context, timeoutMs, more)));
  // The step path (what the worker's runner uses).
  const call = through('call');

  /**
   * Calls that hold every slot of the runtime (a thread of the pool each, or
   * the event loop itself) until `release()` (or `seconds`, a safety net).
   * Resolves once all have started. Never a fixed hold: on a loaded machine
   * a hold of 0.3 s could end before the test queued its calls behind it.
   */
  let holds = 0;
  const occupy = async (seconds = 30): Promise<{ release: () => Promise<BridgeResult[]> }> => {
    const n = model === 'async' ? 1 : threads;
    const hold = join(tmpdir(), `weft-hold-${runtime}-${process.pid}-${++holds}`);
    const markers = Array.from({ length: n }, (_, i) => `${hold}-${i}`);
    const released = `${hold}-release`;
    const calls = markers.map((started) => bridge.dispatch(runtime, request('probe.hold', { started, release: released, seconds }, 60_000)));
    await until(`${n} handler(s) to hold every slot`, () => markers.every((m) => existsSync(m)));
    for (const m of markers) rmSync(m, { force: true });
    return {
      /** Lets the holding calls return; resolves with their results. */
      release: async () => {
        writeFileSync(released, '');
        const results = await Promise.all(calls);
        rmSync(released, { force: true });
        return results;
      },
    };
  };

  describe(`bridge: ${runtime} (${model})`, () => {
    beforeAll(async () => {
      // The seed's CSV handlers then read their shipped data folder (before the interpreter starts: Python reads its environment once).
      delete process.env.WEFT_EXAMPLES_DATA_DIR;
      bridge = openBridge();
      if (runtime === 'typescript') {
        ({ handlers } = await bridge.registerTypescriptHandlers(probeHandlers));
      } else {
        bridge.configure(runtime, { threads });
        ({ handlers } = await bridge.load(runtime, {
          handlersDir: options.handlersDir ?? [join(fixtures, 'handlers', runtime), join(repoRoot, 'handlers', runtime)],
        }));
        expect(bridge.stats(runtime).threads).toBe(threads);
      }
      bridge.configure(runtime, DEFAULTS);
      defaultSyncWaitUs = bridge.stats(runtime).config.syncWaitUs;
    });

    it('loads the handlers and lists their keys', () => {
      expect(handlers).toContain('probe.ok');
      expect(handlers).toContain('probe.class_handler');
      if (seeded) expect(handlers).toEqual(expect.arrayContaining(['linear.square', 'diamond.end', 'csv.aggregate', 'approval.route']));
    });

    // Every behaviour through both paths: dispatch() (always asynchronous)
    // and call() (the fast path, with the runtime's default sync budget).
    for (const mode of MODES) {
      describe(`through ${mode}()`, () => {
        const call = through(mode);
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
            const busy = await occupy();
            bridge.configure(runtime, { queueCapacity: 1 });
            const before = bridge.stats(runtime).rejectedQueueFull;
            try {
              const pending = Array.from({ length: 6 }, () => call('probe.ok'));
              const refused: BridgeResult[] = [];
              for (const p of pending) void p.then((r) => !r.ok && refused.push(r));
              // Every slot is busy: one call waits in the queue of one, the other five are refused at once.
              await until('five calls to be refused', () => refused.length >= 5);
              for (const r of refused) expect(err(r)).toMatchObject({ kind: 'queue_full', permanent: false });
              expect(bridge.stats(runtime).rejectedQueueFull - before).toBe(5);
              for (const r of await busy.release()) expect(r.ok).toBe(true);
              const rest = await Promise.all(pending);
              expect(rest.filter((r) => r.ok).map(ok)).toEqual([expect.objectContaining({ sum: 6 })]); // the queued one ran once a slot was free
              expect(refused).toHaveLength(5);
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
      });
    }

    describe("the breaker counts only the runtime's own failures", () => {
      it('never opens on handlers that raise, return something that is not JSON or are not found', async () => {
        bridge.resetBreaker(runtime);
        bridge.configure(runtime, { failureThreshold: 2, cooldownMs: 60_000 });
        const openedBefore = bridge.stats(runtime).breaker.timesOpened;
        try {
          for (let i = 0; i < 5; i++) {
            expect(err(await call('probe.flaky', { fail: true }))).toMatchObject({ kind: 'raised', message: 'flaky failure' });
            expect(err(await call('probe.bad_return')).kind).toBe('invalid_return');
            expect(err(await call('probe.does_not_exist')).kind).toBe('handler_not_found');
          }
          expect(bridge.stats(runtime).breaker).toEqual({ state: 'closed', consecutiveFailures: 0, timesOpened: openedBefore, lastFailure: null });
          expect(ok(await call('probe.flaky', { fail: false }))).toBe('fine');
        } finally {
          bridge.configure(runtime, DEFAULTS);
        }
      });

      it('opens on timeouts, names the last failure in its rejections, and probes its way closed', async () => {
        bridge.resetBreaker(runtime);
        // a cooldown long enough that no stall of a loaded machine reopens the gate before the rejection is checked
        bridge.configure(runtime, { failureThreshold: 2, cooldownMs: 1000, successThreshold: 2 });
        const breaker = () => bridge.stats(runtime).breaker;
        const openedBefore = breaker().timesOpened;
        const admitted = async (handler: string, context: unknown = {}, timeoutMs = 10_000) =>
          until(`the ${runtime} breaker to let a probe through`, async () => {
            const r = await call(handler, context, timeoutMs);
            return r.ok || r.error.kind !== 'circuit_open' ? r : undefined;
          });
        try {
          expect(err(await call('probe.spin', {}, 50)).kind).toBe('timeout');
          expect(breaker()).toMatchObject({ state: 'closed', consecutiveFailures: 1 });
          // an answer, even a raise, says the runtime is healthy
          expect(err(await call('probe.flaky', { fail: true })).kind).toBe('raised');
          expect(breaker()).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
          expect(err(await call('probe.spin', {}, 50)).kind).toBe('timeout');
          expect(err(await call('probe.spin', {}, 50)).kind).toBe('timeout');
          expect(breaker()).toMatchObject({ state: 'open', timesOpened: openedBefore + 1 });

          const completedBefore = bridge.stats(runtime).completed;
          const rejectedBefore = bridge.stats(runtime).rejectedByBreaker;
          const rejected = err(await call('probe.ok'));
          expect(rejected).toMatchObject({ kind: 'circuit_open', class: 'CircuitOpen', permanent: false, language: runtime });
          expect(rejected.message).toMatch(
            new RegExp(
              `^the ${runtime} circuit breaker is open after repeated failures of the runtime itself .*; the last was HandlerTimeout: handler "probe\\.spin" did not return within 50 ms of starting`,
            ),
          );
          expect(rejected.lastFailure).toEqual({
            class: 'HandlerTimeout',
            kind: 'timeout',
            message: expect.stringContaining('"probe.spin" did not return within 50 ms'),
          });
          expect(breaker().lastFailure).toEqual(rejected.lastFailure);
          expect(bridge.stats(runtime).rejectedByBreaker).toBe(rejectedBefore + 1);
          expect(bridge.stats(runtime).completed).toBe(completedBefore); // it did not run

          // after the cooldown a probe runs; a raising probe is an answer, not a failure
          expect(err(await admitted('probe.flaky', { fail: true })).kind).toBe('raised');
          expect(breaker().state).toBe('half_open');
          // a probe that times out opens it again
          expect(err(await call('probe.spin', {}, 50)).kind).toBe('timeout');
          expect(breaker()).toMatchObject({ state: 'open', timesOpened: openedBefore + 2 });
          // two good probes close it
          expect(ok(await admitted('probe.flaky', { fail: false }))).toBe('fine');
          expect(breaker().state).toBe('half_open');
          expect(ok(await call('probe.flaky', { fail: false }))).toBe('fine');
          expect(breaker()).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
        } finally {
          bridge.resetBreaker(runtime);
          bridge.configure(runtime, DEFAULTS);
        }
      });

      it('forgets the last failure when reset', async () => {
        bridge.configure(runtime, { failureThreshold: 1, cooldownMs: 60_000 });
        try {
          expect(err(await call('probe.spin', {}, 30)).kind).toBe('timeout');
          expect(bridge.stats(runtime).breaker.lastFailure?.class).toBe('HandlerTimeout');
          bridge.resetBreaker(runtime);
          expect(bridge.stats(runtime).breaker).toMatchObject({ state: 'closed', lastFailure: null });
          expect(ok(await call('probe.ok'))).toMatchObject({ sum: 6 });
        } finally {
          bridge.configure(runtime, DEFAULTS);
        }
      });
    });

    if (runtime !== 'typescript') {
      describe("timeouts count from the handler's start", () => {
        for (const mode of MODES) {
          it(`a call queued behind slow ones does not time out because of the wait (${mode})`, async () => {
            const call = through(mode);
            const slow = await occupy();
            const queued = Array.from({ length: 3 }, () => call('probe.ok', {}, 100));
            await sleep(300); // each waits at least 3x its timeout
            for (const r of await slow.release()) expect(r.ok).toBe(true);
            for (const r of await Promise.all(queued)) expect(ok(r)).toMatchObject({ sum: 6 });
          });
        }

        it('a queued handler that runs too long still times out, counted from its start', async () => {
          const slow = call('probe.sleep_then_return', { seconds: 0.2 }, 10_000);
          const spin = call('probe.spin', {}, 100);
          const e = err(await spin);
          expect(e).toMatchObject({ kind: 'timeout', class: 'HandlerTimeout', permanent: false });
          expect(e.message).toBe(`handler "probe.spin" did not return within 100 ms of starting (${runtime}); the runtime was asked to interrupt it`);
          expect(ok(await slow)).toBe('late');
          await until('the interrupted runtime to answer again', async () => (await call('probe.ok')).ok);
        });
      });

      describe('call(): waits for a short call on the JS thread', () => {
        const fast = (handler: string, context: unknown = {}, timeoutMs = 10_000) => bridge.call(runtime, request(handler, context, timeoutMs));
        beforeAll(() => bridge.configure(runtime, { syncWaitUs: 1_000_000 })); // 1 s: nothing short can miss it
        afterAll(() => bridge.configure(runtime, { syncWaitUs: defaultSyncWaitUs }));

        it('answers synchronously with the same results and errors as dispatch()', async () => {
          const cases: Array<[string, unknown]> = [
            ['probe.ok', {}],
            ['probe.class_handler', { n: 4 }],
            ['probe.boom', { why: 'sync' }],
            ['probe.permanent', {}],
            ['probe.bad_return', {}],
            ['probe.nan', {}],
            ['probe.does_not_exist', {}],
          ];
          for (const [handler, context] of cases) {
            const viaDispatch = await bridge.dispatch(runtime, request(handler, context));
            const before = bridge.stats(runtime).syncReturns;
            const r = fast(handler, context);
            expect(r, handler).not.toBeInstanceOf(Promise);
            expect(r, handler).toEqual(viaDispatch);
            expect(bridge.stats(runtime).syncReturns).toBe(before + 1);
          }
        });

        it('answers a timeout synchronously when it fires within the wait', async () => {
          const r = fast('probe.spin', {}, 30);
          expect(r).not.toBeInstanceOf(Promise);
          const e = err(r as BridgeResult);
          expect(e).toMatchObject({ kind: 'timeout', class: 'HandlerTimeout', permanent: false, language: runtime });
          expect(e.message).toBe(`handler "probe.spin" did not return within 30 ms of starting (${runtime}); the runtime was asked to interrupt it`);
          await until('the interrupted runtime to answer again', async () => (await call('probe.ok')).ok);
        });

        it('does not wait while another call is in flight, and still answers it', async () => {
          const busy = bridge.dispatch(runtime, request('probe.sleep_then_return', { seconds: 0.2 }));
          const misses = bridge.stats(runtime).syncWaitMisses;
          const r = fast('probe.ok');
          expect(r).toBeInstanceOf(Promise);
          expect(ok(await r)).toMatchObject({ sum: 6 });
          expect(ok(await busy)).toBe('late');
          expect(bridge.stats(runtime).syncWaitMisses).toBe(misses);
        });

        // probe.nap runs here first: the bridge has no run time for it yet, so the first call waits.
        it('goes on asynchronously when the handler outlasts the wait, then stops waiting for that handler', async () => {
          bridge.configure(runtime, { syncWaitUs: 200 });
          try {
            const s0 = bridge.stats(runtime);
            const first = fast('probe.nap', { seconds: 0.3 });
            expect(first).toBeInstanceOf(Promise);
            expect(ok(await first)).toBe('rested');
            expect(bridge.stats(runtime).syncWaitMisses).toBe(s0.syncWaitMisses + 1);
            // its recent run is far longer than the wait: the next call does not wait at all
            const second = fast('probe.nap', { seconds: 0.01 });
            expect(second).toBeInstanceOf(Promise);
            expect(ok(await second)).toBe('rested');
            expect(bridge.stats(runtime).syncWaitMisses).toBe(s0.syncWaitMisses + 1);
            expect(bridge.stats(runtime).inFlight).toBe(0);
          } finally {
            bridge.configure(runtime, { syncWaitUs: 1_000_000 });
          }
        });
      });
    } else {
      describe('call(): typescript runs inline on the JS thread', () => {
        const fast = (handler: string, context: unknown = {}, timeoutMs = 10_000) => bridge.call(runtime, request(handler, context, timeoutMs));
        const withoutBacktrace = (r: BridgeResult) => (r.ok ? r : { ...r, error: { ...r.error, backtrace: r.error.backtrace.slice(0, 1) } });

        it('answers a synchronous handler at once with the same results and errors as dispatch()', async () => {
          for (const [handler, context] of [
            ['probe.ok', {}],
            ['probe.boom', { why: 'inline' }],
            ['probe.permanent', {}],
            ['probe.bad_return', {}],
            ['probe.does_not_exist', {}],
          ] as const) {
            const viaDispatch = await bridge.dispatch(runtime, request(handler, context));
            const before = bridge.stats(runtime);
            const r = fast(handler, context);
            expect(r, handler).not.toBeInstanceOf(Promise);
            // the stack below the handler differs between the two paths
            expect(withoutBacktrace(r as BridgeResult), handler).toEqual(withoutBacktrace(viaDispatch));
            const after = bridge.stats(runtime);
            expect(after.syncReturns).toBe(before.syncReturns + 1);
            expect(after.dispatched).toBe(before.dispatched + 1);
            expect(after.histograms.run.count).toBe(before.histograms.run.count + 1);
            expect(after.inFlight).toBe(0);
          }
        });

        it('answers a synchronous handler that overran its timeout as a timeout, when it returns', async () => {
          const before = bridge.stats(runtime);
          const r = fast('probe.busy', { seconds: 0.1 }, 20);
          expect(r).not.toBeInstanceOf(Promise);
          const e = err(r as BridgeResult);
          expect(e).toMatchObject({ kind: 'timeout', class: 'HandlerTimeout', permanent: false });
          expect(e.message).toMatch(
            /^handler "probe\.busy" did not return within 20 ms of starting \(typescript\); it ran synchronously for \d+ ms, which nothing can interrupt, and its result was dropped$/,
          );
          expect(bridge.stats(runtime).timedOut).toBe(before.timedOut + 1);
          expect(bridge.stats(runtime).lateResults).toBe(before.lateResults + 1);
        });

        it('gives a Promise for an async handler and times it out from its start', async () => {
          const r = fast('probe.nap', { seconds: 0.5 }, 50);
          expect(r).toBeInstanceOf(Promise);
          const e = err(await r);
          expect(e.kind).toBe('timeout');
          expect(e.message).toBe('handler "probe.nap" did not return within 50 ms of starting (typescript); the runtime was asked to interrupt it');
          expect(ok(await fast('probe.nap', { seconds: 0.01 }))).toBe('rested');
        });
      });
    }

    describe(`JSON nesting up to MAX_JSON_DEPTH (${MAX_JSON_DEPTH})`, () => {
      const nest = (depth: number, inner: unknown = 'deepest'): unknown => {
        let v = inner;
        for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { k: v };
        return v;
      };
      it("a context and a parent's result nested exactly the limit deep reach the handler intact", async () => {
        const deep = nest(MAX_JSON_DEPTH) as Record<string, unknown>;
        expect(jsonDepthProblem(deep)).toBeUndefined();
        expect(ok(await call('probe.echo', deep))).toEqual(deep);
        // dependency_results puts one more level between the step and the value
        expect(ok(await call('probe.parent_result', {}, 10_000, { dependency_results: { parent: deep } }))).toEqual(deep);
      });

      const tooDeep = (depth: number) =>
        `handler "probe.nest" returned a result that nests deeper than ${MAX_JSON_DEPTH} levels at $${'[0]'.repeat(MAX_JSON_DEPTH)}; ` +
        `flatten it (weft keeps every JSON value within ${MAX_JSON_DEPTH} levels)`;
      it('a result exactly the limit deep comes back intact', async () => {
        const r = ok(await call('probe.nest', { depth: MAX_JSON_DEPTH }));
        expect(jsonDepthProblem(r)).toBeUndefined();
        expect(JSON.stringify(r)).toBe('['.repeat(MAX_JSON_DEPTH) + '1' + ']'.repeat(MAX_JSON_DEPTH));
      });
      // Ruby's generator and the typescript target's JSON check stop at the
      // limit themselves; Python only where its encoder would recurse too
      // deep. Everything else deeper than the limit is the worker's check
      // (test/integration/engine.depth.test.ts).
      for (const depth of [MAX_JSON_DEPTH + 1, 1_500]) {
        const sdkRefuses = runtime !== 'python' || depth > 900;
        it(`a result ${depth} levels deep ${sdkRefuses ? 'is a permanent invalid_return naming the limit and the path' : 'crosses the bridge as text'}`, async () => {
          const r = await call('probe.nest', { depth });
          if (!sdkRefuses) {
            expect(r.ok && r.json.length).toBe(2 * depth + 1);
            return;
          }
          const e = err(r);
          expect(e).toMatchObject({ kind: 'invalid_return', permanent: true, class: runtime === 'ruby' ? 'Weft::InvalidReturn' : 'InvalidReturn' });
          expect(e.message).toBe(tooDeep(depth));
        });
      }
    });

    describe('cancel(runtime, key)', () => {
      let nextKey = 1_000;
      const keyed = (mode: Mode, handler: string, context: unknown, timeoutMs: number) => {
        const key = nextKey++;
        const req = { ...request(handler, context, timeoutMs), key };
        const r = mode === 'dispatch' ? bridge.dispatch(runtime, req) : Promise.resolve(bridge.call(runtime, req));
        return { key, result: r };
      };
      const marker = (name: string) => join(tmpdir(), `weft-cancel-${runtime}-${process.pid}-${name}-${nextKey}`);
      const cancelledError = {
        language: runtime,
        class: 'Cancelled',
        message: 'the task was cancelled',
        permanent: true,
        kind: 'cancelled',
        backtrace: [],
      };

      for (const mode of MODES) {
        it(`settles a running handler as cancelled at once, far before its timeout, and stays healthy (${mode})`, async () => {
          const started = marker('started');
          const seenBefore = (ok(await call('probe.cancel_seen')) as string[]).length;
          const running = keyed(mode, 'probe.until_cancelled', { started }, 60_000);
          await until('the handler to start', () => existsSync(started));
          const t0 = performance.now();
          expect(bridge.cancel(runtime, running.key)).toBe(true);
          expect(err(await running.result)).toEqual(cancelledError);
          // It settled within the cancel itself; the 60 s timeout never came into it.
          expect(performance.now() - t0).toBeLessThan(1_000);
          // A second cancel of the same call finds nothing.
          expect(bridge.cancel(runtime, running.key)).toBe(false);
          // The runtime serves the next call.
          expect(ok(await call('probe.ok'))).toMatchObject({ language: runtime });
          // What the handler saw: the interrupt (python, ruby) or its aborted step.signal (typescript through call()).
          if (seeded || mode === 'call') {
            const seen = await until('the handler to see the cancel', async () => {
              const list = ok(await call('probe.cancel_seen')) as string[];
              return list.length > seenBefore ? list : undefined;
            });
            expect(seen[seen.length - 1]).toBe(cancelledClass);
          }
          expect(bridge.isBroken(runtime)).toBe(false);
          // A cancel is the caller's decision, not a failure of the runtime: the breaker does not count it.
          expect(bridge.stats(runtime).breaker).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
          rmSync(started, { force: true });
        });
      }

      if (seeded) {
        for (const mode of MODES) {
          it(`drops a call queued behind running ones: it never runs (${mode})`, async () => {
            const touched = marker('touched');
            const busy = await occupy();
            const queued = keyed(mode, 'probe.touch', { path: touched }, 60_000);
            expect(bridge.cancel(runtime, queued.key)).toBe(true);
            expect(err(await queued.result)).toEqual(cancelledError);
            for (const r of await busy.release()) expect(r.ok).toBe(true);
            // Had the dropped call stayed in the queue it would have run by now, before this one.
            expect(ok(await call('probe.touch', { path: `${touched}-after` }))).toBe('touched');
            expect(existsSync(touched)).toBe(false);
            rmSync(`${touched}-after`, { force: true });
          });
        }
      }

      it('answers false for a key no call in flight has, and for a call already settled', async () => {
        expect(bridge.cancel(runtime, 987_654_321)).toBe(false);
        const done = keyed('dispatch', 'probe.ok', {}, 10_000);
        expect(ok(await done.result)).toMatchObject({ language: runtime });
        expect(bridge.cancel(runtime, done.key)).toBe(false);
      });
    });

    if (extra) extra(() => bridge);

    it('a handler that ignores its timeout past the grace period is reported stuck and loses its slot; the others go on', async () => {
      bridge.configure(runtime, { graceMs: 300, maxStuck: 3 });
      const events: string[] = [];
      bridge.onEvent((event, rt, detail) => rt === runtime && events.push(`${event}: ${detail}`));
      const before = bridge.stats(runtime);
      try {
        expect(err(await call('probe.stubborn', {}, 100)).kind).toBe('timeout');
        await until('the stuck handler to be reported', () => events.some((e) => e.startsWith('stuck: ')));
        const stuck = events.find((e) => e.startsWith('stuck: '))!;
        expect(stuck).toMatch(/^stuck: handler "probe\.stubborn" ignored its timeout of 100 ms and had not returned 300 ms later; its slot was given up/);
        const s = bridge.stats(runtime);
        expect(s.stuck).toBe(before.stuck + 1);
        expect(s.stuckTotal).toBe(before.stuckTotal + 1);
        // the pool gets its size back (Ruby's replacement thread is started by its control thread, a moment
        // later: stats read at once may still count the one that left), and every slot still serves
        if (model === 'threads') await until('the pool to be back to its size', () => bridge.stats(runtime).threads === threads);
        const results = await Promise.all(Array.from({ length: 2 * threads }, () => call('probe.ok')));
        for (const r of results) expect(ok(r)).toMatchObject({ sum: 6 });
        expect(bridge.isBroken(runtime)).toBe(false);
        // a runtime failure, for the breaker
        expect(s.breaker.lastFailure).toMatchObject({ class: 'StuckHandler' });
      } finally {
        bridge.resetBreaker(runtime);
        bridge.configure(runtime, { ...DEFAULTS, maxStuck: 1 });
      }
    });

    // Last: it leaves the runtime broken for the rest of this process.
    it('marks the runtime broken when too many handlers are stuck at once', async () => {
      bridge.configure(runtime, { graceMs: 300, maxStuck: bridge.stats(runtime).stuck + 1 });
      const events: string[] = [];
      bridge.onBroken((rt, reason) => events.push(`${rt}: ${reason}`));
      const e = err(await call('probe.stubborn', {}, 100));
      expect(e.kind).toBe('timeout');
      await until(`the ${runtime} runtime to be marked broken`, () => bridge.isBroken(runtime));
      expect(bridge.stats(runtime).brokenReason).toContain('probe.stubborn');
      const after = err(await call('probe.ok'));
      expect(after.kind).toBe('runtime_broken');
      expect(after.permanent).toBe(false);
      expect(after.message).toMatch(new RegExp(`^the ${runtime} runtime is broken: handler "probe.stubborn" ignored its timeout`));
      expect(after.message).toMatch(/handlers? (is|are) stuck at once \(the limit is \d+, WEFT_BRIDGE_MAX_STUCK\), so restart this worker process$/);
      // the fast path answers it synchronously, dispatch() the same through its Promise
      const fast = bridge.call(runtime, request('probe.ok'));
      expect(fast).not.toBeInstanceOf(Promise);
      expect(fast).toEqual(await bridge.dispatch(runtime, request('probe.ok')));
      await until('the broken event', () => events.length > 0);
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

  it('csv: reads products.csv from the shipped data folder, in the batches the inputs ask for, with the results of the TypeScript example', async () => {
    const payload = (context: unknown, more: Record<string, unknown>) => stepPayload(context, { inputs: { batch_size: 200, max_workers: 5 }, ...more });
    const call = async (handler: string, context: unknown, more: Record<string, unknown> = {}) =>
      get().dispatch(runtime, { handler, payload: payload(context, more), timeoutMs: 10_000 });
    const context = { csv_file_path: 'products.csv' };
    const plan = ok(await call('csv.analyze', context)) as { $weft: string; cursors: Array<{ start_row: number; end_row: number }> };
    expect(plan).toEqual({ $weft: 'batches', cursors: [0, 200, 400, 600, 800].map((s) => ({ start_row: s, end_row: s + 200 })) });
    const parts: Record<string, unknown> = {};
    for (const [i, cursor] of plan.cursors.entries()) {
      const batch = { cursor, index: i + 1, total: plan.cursors.length, no_op: false };
      parts[`process_csv_batch_00${i + 1}`] = ok(await call('csv.process_batch', context, { batch }));
    }
    const agg = ok(await call('csv.aggregate', context, { dependency_results: parts }));
    const text = readFileSync(join(repoRoot, 'handlers', 'data', 'products.csv'), 'utf8');
    const whole = summarise(parseProducts(text));
    expect(agg).toEqual(whole);
    expect(agg).toMatchObject({ processed_count: 1000, ...expectedCsvAggregate(text) });
    // Given no WEFT_EXAMPLES_DATA_DIR, the folder is the one beside the handlers.
    const refused = err(await call('csv.analyze', { csv_file_path: '/etc/passwd' }));
    expect(refused.permanent).toBe(true);
    expect(refused.message).toBe(
      `context.csv_file_path is an absolute path; name a CSV file inside the examples data folder ${join(repoRoot, 'handlers', 'data')}, e.g. "products.csv" (WEFT_EXAMPLES_DATA_DIR sets the folder)`,
    );
  });
}
