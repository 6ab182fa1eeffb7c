/**
 * The I/O-bound tier of weft bench (issue 16), the measuring half: a cluster
 * of its own (1 orchestrator, one worker per runtime with --concurrency 256,
 * bench/io's templates and handlers) on the bench's database, and a local
 * HTTP server the `http` variants call.
 *
 * Round r: for each task count N, for each variant (interleaved, so load that
 * changes during the tier lands on every variant alike), N tasks are created
 * at once and waited for through the long-poll; tasks/s = N / (first POST →
 * last task observed done). Every task's result is checked, and the test
 * server must have answered exactly one request per `http` task.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../shared/logger.js';
import { packageRoot } from '../shared/paths.js';
import { RUNTIMES, runtimeRow } from '../shared/runtimes.js';
import { BenchFailure, createAndWait, startCluster } from './client.js';
import { IO_CONCURRENCY, IO_VARIANTS, IO_WAIT_MS, ioContext, verifyIoOutcome, type IoVariant } from './io.js';
import { summarize } from './stats.js';
import type { Backend, IoResult, IoRound, IoSection } from './types.js';

/** The loopback server of the `http` variants. */
export interface IoServer {
  /** http://127.0.0.1:<port>: what the workers get as WEFT_BENCH_IO_ORIGIN. */
  origin: string;
  /** Requests answered with 200 so far. */
  readonly served: number;
  close(): Promise<void>;
}

/**
 * Listen on 127.0.0.1, a free port: `GET /wait?id=X` is answered after
 * `waitMs` with `{"id": "X"}` (with a Content-Length, never chunked); any
 * other request gets 404.
 */
export async function startIoServer(waitMs = IO_WAIT_MS): Promise<IoServer> {
  let served = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.method !== 'GET' || url.pathname !== '/wait')
      return reply(404, { error: `${req.method} ${url.pathname}: this server answers only GET /wait?id=…` });
    const timer = setTimeout(() => {
      served++;
      reply(200, { id: url.searchParams.get('id') });
    }, waitMs);
    res.once('close', () => clearTimeout(timer));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    get served() {
      return served;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface IoTierOptions {
  backend: Backend;
  rounds: number;
  /** Task counts, e.g. [32, 256]. */
  tasks: number[];
  basePort?: number;
  /** The bench's environment for the children (its database URL among it). */
  env: NodeJS.ProcessEnv;
  stateDir: string;
  log: Logger;
  /** Prints one progress line. */
  line: (text: string) => void;
}

/** N tasks of one variant at once: wall time, each step's run time, all results checked. */
async function measureOnce(base: string, v: IoVariant, tasks: number, tag: string, server: IoServer): Promise<Omit<IoRound, 'round'>> {
  // Generous: even a runtime that ran the steps one at a time ends within it (and shows as slow, not as failed).
  const timeoutMs = Math.max(30_000, tasks * IO_WAIT_MS * 2);
  const servedBefore = server.served;
  const t0 = performance.now();
  const done = await Promise.all(
    Array.from({ length: tasks }, async (_, k) => {
      const context = ioContext(v, `${tag}-${k}`, server.origin);
      const { view } = await createAndWait(base, { namespace: v.namespace, name: v.name, context }, timeoutMs, `io ${v.id}`);
      const at = performance.now();
      const problem = verifyIoOutcome(v, view, context);
      if (problem) throw new BenchFailure(`io ${v.id}, ${tasks} tasks: task ${view.id} has a wrong result: ${problem}`);
      return { at, step_ms: Number(view.steps[0].duration_ms) };
    }),
  );
  const wall_ms = Math.max(...done.map((d) => d.at)) - t0;
  const answered = server.served - servedBefore;
  if (v.kind === 'http' && answered !== tasks)
    throw new BenchFailure(`io ${v.id}: the test server answered ${answered} requests for ${tasks} tasks, expected one per task`);
  return {
    wall_ms: Math.round(wall_ms * 1000) / 1000,
    tasks_per_s: Math.round((tasks / (wall_ms / 1000)) * 10) / 10,
    step: summarize(done.map((d) => d.step_ms)),
    verified: tasks,
  };
}

/** Start the tier's cluster and server, measure every variant at every task count for `rounds` rounds, stop both. */
export async function measureIoTier(o: IoTierOptions): Promise<IoSection> {
  const server = await startIoServer();
  const bench = join(packageRoot(), 'bench', 'io');
  try {
    o.line(`${o.backend} io: starting 1 orchestrator and a ${RUNTIMES.join(', ')} worker (concurrency ${IO_CONCURRENCY}), test server ${server.origin}…`);
    const sup = await startCluster(
      {
        orchestrators: 1,
        workers: Object.fromEntries(RUNTIMES.map((r) => [r, 1])),
        backend: o.backend,
        stateDir: o.stateDir,
        // Its own cluster, so the per-address limit on task creation must not pace the bench.
        env: { ...o.env, WEFT_BENCH_IO_ORIGIN: server.origin, WEFT_TASK_RATE_LIMIT: '10000000' },
        concurrency: IO_CONCURRENCY,
        templates: join(bench, 'templates'),
        handlers: Object.fromEntries(RUNTIMES.map((r) => [r, join(bench, 'handlers', runtimeRow(r).handlerDir)])),
      },
      o.basePort,
      o.log,
    );
    try {
      const base = sup.orchestratorUrls()[0]!;
      o.line(`${o.backend} io: warming up every variant with ${Math.max(...o.tasks)} tasks at once…`);
      // Warm-up (not measured), every variant at the largest N: first imports, prepared statements, the
      // connections of that many tasks at once and the threads of the pools (which grow on demand), so that
      // the first variant of a round pays no more than the others.
      for (const v of IO_VARIANTS) await measureOnce(base, v, Math.max(...o.tasks), `warm-${v.id}`, server);
      const results: IoResult[] = o.tasks.flatMap((tasks) =>
        IO_VARIANTS.map((v) => ({ variant: v.id, label: v.label, kind: v.kind, runtime: v.runtime, tasks, rounds: [] })),
      );
      for (let round = 1; round <= o.rounds; round++) {
        for (const tasks of o.tasks) {
          for (const v of IO_VARIANTS) {
            const r = { round, ...(await measureOnce(base, v, tasks, `r${round}-n${tasks}-${v.id}`, server)) };
            const result = results.find((x) => x.variant === v.id && x.tasks === tasks)!;
            result.rounds.push(r);
            const native = results.find((x) => x.runtime === 'native' && x.kind === v.kind && x.tasks === tasks)?.rounds.find((x) => x.round === round);
            const vs = native ? ` (${(r.tasks_per_s / native.tasks_per_s).toFixed(2)}× native)` : '';
            o.line(
              `  round ${round} · io ${String(tasks).padStart(3)} × ${v.id.padEnd(20)} ${r.tasks_per_s.toFixed(1).padStart(7)} tasks/s${vs}  step P50 ${r.step.p50.toFixed(1)} ms  P95 ${r.step.p95.toFixed(1)} ms  ✓ results`,
            );
          }
        }
      }
      return { wait_ms: IO_WAIT_MS, tasks: o.tasks, rounds: o.rounds, worker_concurrency: IO_CONCURRENCY, results };
    } finally {
      await sup.stop();
    }
  } finally {
    await server.close();
  }
}
