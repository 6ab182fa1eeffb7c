import { clusterPorts, type ClusterSpec } from '../../src/ops/cluster.js';
import { portIsFree } from '../../src/ops/ports.js';

/** A TCP port on 127.0.0.1 that was free a moment ago (for a child process to bind): the engine's own helper. */
export { freePort } from '../../src/ops/ports.js';

/**
 * A cluster base port whose whole block (these orchestrators and workers, at
 * most base + 400) is free, between 20000 and 32400: below the range the OS
 * hands out for outgoing connections and port 0 (32768-60999 here), where
 * the pools of every test process come and go; a block up there could be
 * free when checked and taken by a new connection's local port before the
 * cluster binds it. Blocks start 400 apart, so two never overlap.
 */
export async function freeClusterBase(spec: Pick<ClusterSpec, 'orchestrators' | 'workers'>): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 20_000 + Math.floor(Math.random() * 31) * 400;
    if ((await Promise.all(clusterPorts({ ...spec, basePort: base }).map(portIsFree))).every(Boolean)) return base;
  }
  throw new Error('no free port block found between 20000 and 32400');
}
