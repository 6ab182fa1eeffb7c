/**
 * weft bench's I/O handlers (bench/io/handlers) in the real interpreters,
 * against the bench's own test server: each waits or fetches and returns
 * what the bench checks, many run at once without their results crossing,
 * and the http ones refuse every URL that is not on the test server, before
 * any request is made.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openBridge, type AddonBridge, type BridgeResult, type BridgeRuntime } from '../../src/bridge/index.js';
import { startIoServer, type IoServer } from '../../src/benchmark/io-tier.js';
import { handlers as tsHandlers } from '../../bench/io/handlers/typescript/bench-io.js';
import { repoRoot, stepPayload } from './helpers.js';

const HANDLERS = join(repoRoot, 'bench', 'io', 'handlers');

let bridge: AddonBridge;
let server: IoServer;

beforeAll(async () => {
  server = await startIoServer(20);
  // Python reads its environment once, when the interpreter starts: set it before the load.
  process.env.WEFT_BENCH_IO_ORIGIN = server.origin;
  bridge = openBridge();
  for (const runtime of ['python', 'ruby'] as const) {
    bridge.configure(runtime, { threads: 8 });
    await bridge.load(runtime, { handlersDir: join(HANDLERS, runtime) });
  }
  await bridge.registerTypescriptHandlers(tsHandlers as never);
});

afterAll(async () => {
  await server?.close();
});

const call = (runtime: BridgeRuntime, handler: string, context: unknown) =>
  bridge.dispatch(runtime, { handler, payload: stepPayload(context), timeoutMs: 20_000 });

function ok(r: BridgeResult): unknown {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r.error)}`);
  return JSON.parse(r.json);
}

const HTTP: Array<[BridgeRuntime, string]> = [
  ['python', 'io.http'],
  ['python', 'io.http_async'],
  ['ruby', 'io.http'],
  ['typescript', 'io.http'],
];
const SLEEP: Array<[BridgeRuntime, string]> = [
  ['python', 'io.sleep'],
  ['python', 'io.sleep_async'],
  ['ruby', 'io.sleep'],
  ['typescript', 'io.sleep'],
];

describe("weft bench's I/O handlers", () => {
  it.each(SLEEP)('%s %s waits and returns { id, slept_ms }', async (runtime, handler) => {
    expect(ok(await call(runtime, handler, { id: 's-1', ms: 5 }))).toEqual({ id: 's-1', slept_ms: 5 });
  });

  it.each(HTTP)('%s %s GETs the test server, many at once, each getting back its own id', async (runtime, handler) => {
    const before = server.served;
    const ids = Array.from({ length: 12 }, (_, i) => `${runtime}-${handler}-${i}`);
    const results = await Promise.all(ids.map((id) => call(runtime, handler, { id, url: `${server.origin}/wait?id=${id}` })));
    expect(results.map(ok)).toEqual(ids.map((id) => ({ id, status: 200, echo: id })));
    expect(server.served - before).toBe(ids.length);
  });

  it.each(HTTP)('%s %s fails a step the server answers with 404, naming the status', async (runtime, handler) => {
    const r = await call(runtime, handler, { id: 'x', url: `${server.origin}/elsewhere` });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/404/);
  });

  const refused = () => [
    ['another host', 'http://10.255.255.1/wait?id=x'],
    ['another port on loopback', `http://127.0.0.1:${Number(new URL(server.origin).port) === 65535 ? 1 : Number(new URL(server.origin).port) + 1}/wait?id=x`],
    ['a name for loopback', server.origin.replace('127.0.0.1', 'localhost') + '/wait?id=x'],
    ['user info that names another host', `${server.origin}@evil.example/wait?id=x`],
    ['a CR LF that would add a header', `${server.origin}/wait?id=x\r\nHost: evil.example`],
    ['no URL', undefined],
  ];

  it.each(HTTP)('%s %s refuses any URL not on the test server, permanently, before a request is made', async (runtime, handler) => {
    const before = server.served;
    for (const [what, url] of refused()) {
      const r = await call(runtime, handler, { id: 'x', url });
      expect(r.ok, what).toBe(false);
      if (r.ok) continue;
      expect(r.error.permanent, what).toBe(true);
      expect(r.error.class, what).toMatch(/PermanentError$/);
      expect(r.error.message, what).toBe(
        `context.url is ${JSON.stringify(url ?? null)}; the I/O benchmark's handlers fetch only ${server.origin}/… (weft bench's own test server, WEFT_BENCH_IO_ORIGIN) with a plain path and query, so it is refused`,
      );
    }
    expect(server.served).toBe(before);
  });
});
