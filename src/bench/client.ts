/**
 * How weft bench talks to its clusters: create a task, wait for its end
 * through the long-poll, and the clusters it has started (a signal stops them
 * by pid before the bench exits).
 */
import type { Logger } from '../shared/logger.js';
import { ConfigError, WeftError } from '../shared/errors.js';
import { requestJson as httpJson } from '../shared/http-json.js';
import { ClusterSupervisor, clusterPorts, type ClusterSpec } from '../ops/cluster.js';
import { portIsFree } from '../ops/ports.js';

/** A task came back wrong, or the service answered something unexpected: the bench fails. */
export class BenchFailure extends WeftError {
  override name = 'BenchFailure';
  constructor(message: string) {
    super('bench_failed', message);
  }
}

/** The API's answer as JSON; a body that is not JSON fails the bench. */
async function requestJson(method: 'GET' | 'POST', url: string, body?: unknown, timeoutMs = 60_000): Promise<{ status: number; body: any }> {
  const res = await httpJson(method, url, { body, timeoutMs });
  if (typeof res.body === 'string') throw new BenchFailure(`${method} ${url} answered ${res.status} with a body that is not JSON: ${res.body.slice(0, 200)}`);
  return res;
}

export interface EndedTask {
  /** The task view the long-poll returned (the task has ended). */
  view: any;
  /** POST /v1/tasks round trip, ms (the create transaction and first dispatch included). */
  post_ms: number;
  /** POST sent → long-poll returned, ms. */
  client_ms: number;
  /** Unix ms (sub-ms precision): POST sent, its 201 read, the long-poll's view read. */
  at: { sent: number; created: number; ended: number };
}

/**
 * Create one task and wait for its end through the long-poll (the server
 * answers when the task ends; no sleep loop). `what` names the scenario in
 * the errors.
 */
export async function createAndWait(
  base: string,
  task: { namespace: string; name: string; context: Record<string, unknown> },
  timeoutMs: number,
  what: string,
): Promise<EndedTask> {
  const t0 = performance.now();
  const sent = performance.timeOrigin + t0;
  const created = await requestJson('POST', `${base}/v1/tasks`, task);
  if (created.status !== 201)
    throw new BenchFailure(`POST ${base}/v1/tasks for ${task.namespace}/${task.name} answered ${created.status}: ${JSON.stringify(created.body)}`);
  const id = created.body.id as string;
  const post_ms = performance.now() - t0;
  const waited = await requestJson('GET', `${base}/v1/tasks/${id}/wait?timeout_ms=${timeoutMs}`, undefined, timeoutMs + 10_000);
  const client_ms = performance.now() - t0;
  const at = { sent, created: sent + post_ms, ended: sent + client_ms };
  if (waited.status !== 200) throw new BenchFailure(`GET ${base}/v1/tasks/${id}/wait answered ${waited.status}: ${JSON.stringify(waited.body)}`);
  const view = waited.body;
  if (!view.ended) throw new BenchFailure(`${what}: task ${id} did not end within ${timeoutMs} ms (state ${view.state})`);
  return { view, post_ms, client_ms, at };
}

/** Clusters this process runs right now: a signal stops them by pid before the bench exits. */
export const activeClusters = new Set<ClusterSupervisor>();

/** Start a cluster on `basePort`, or on the first free block from 8080 up in steps of 1000. */
export async function startCluster(spec: Omit<ClusterSpec, 'basePort'>, basePort: number | undefined, log: Logger): Promise<ClusterSupervisor> {
  // An explicit --base-port must be free; the default moves up in steps of 1000 past busy ports.
  const candidates = basePort !== undefined ? [basePort] : Array.from({ length: 20 }, (_, i) => 8080 + i * 1000);
  for (const base of candidates) {
    const free = await Promise.all(clusterPorts({ ...spec, basePort: base }).map(portIsFree));
    if (free.every(Boolean) || basePort !== undefined) {
      const sup = new ClusterSupervisor({ ...spec, basePort: base }, log);
      activeClusters.add(sup);
      await sup.start().catch((err: unknown) => {
        activeClusters.delete(sup);
        throw err;
      });
      const stop = sup.stop.bind(sup);
      sup.stop = async (...args) => {
        await stop(...args);
        activeClusters.delete(sup);
      };
      return sup;
    }
  }
  throw new ConfigError('no free block of ports from 8080 to 27080; pass --base-port');
}
