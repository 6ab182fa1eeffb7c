/**
 * weft bench's I/O tier (not a shipped example): steps that wait, run by the
 * `native` worker (called directly) and the `typescript` worker (through the
 * bridge). The Python and Ruby twins are beside this folder.
 *
 * - `io.sleep`: waits `context.ms` milliseconds, returns `{ id, slept_ms }`.
 * - `io.http`: GETs `context.url` from the bench's own test server and returns
 *   `{ id, status, echo }` (echo: the id the server read from the URL). It
 *   fetches nothing but `WEFT_BENCH_IO_ORIGIN` (http://127.0.0.1:<port>, set
 *   by weft bench for its workers): bench code, but never an open fetcher.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineHandlers, PermanentError, type Step } from '../../../../src/worker/sdk.js';

const TIMEOUT_MS = 10_000;
const ORIGIN = /^http:\/\/127\.0\.0\.1:\d{1,5}$/;
/** A plain path and query: nothing that could change the request line or the host. */
const PATH = /^\/[A-Za-z0-9/_.~?=&%-]*$/;

/** The test server's origin and the path of `url` on it, or a PermanentError saying why `url` is refused. */
export function benchTarget(url: unknown, origin = process.env.WEFT_BENCH_IO_ORIGIN): { origin: string; path: string } {
  if (origin === undefined || !ORIGIN.test(origin)) {
    throw new PermanentError(
      `WEFT_BENCH_IO_ORIGIN is ${JSON.stringify(origin ?? null)}, expected http://127.0.0.1:<port> (weft bench sets it for its workers); the I/O benchmark's handlers fetch nothing else`,
    );
  }
  const path = typeof url === 'string' && url.startsWith(`${origin}/`) ? url.slice(origin.length) : undefined;
  if (path === undefined || !PATH.test(path)) {
    throw new PermanentError(
      `context.url is ${JSON.stringify(url ?? null)}; the I/O benchmark's handlers fetch only ${origin}/… (weft bench's own test server, WEFT_BENCH_IO_ORIGIN) with a plain path and query, so it is refused`,
    );
  }
  return { origin, path };
}

function waitMs(step: Step): number {
  const ms = step.context?.ms;
  if (!Number.isInteger(ms) || ms < 0) throw new PermanentError(`context.ms must be a whole number of milliseconds, got ${JSON.stringify(ms)}`);
  return ms as number;
}

export const handlers = defineHandlers({
  'io.sleep': async (step) => {
    const ms = waitMs(step);
    await sleep(ms, undefined, step.signal ? { signal: step.signal } : {});
    return { id: step.context.id, slept_ms: ms };
  },
  'io.http': async (step) => {
    const { origin, path } = benchTarget(step.context?.url);
    const signal = step.signal ? AbortSignal.any([step.signal, AbortSignal.timeout(TIMEOUT_MS)]) : AbortSignal.timeout(TIMEOUT_MS);
    const res = await fetch(`${origin}${path}`, { signal, redirect: 'error' });
    if (res.status !== 200) throw new Error(`the bench's test server answered ${res.status} to GET ${path}: ${(await res.text()).slice(0, 200)}`);
    const body = (await res.json()) as { id?: unknown };
    return { id: step.context.id, status: res.status, echo: body.id };
  },
});
