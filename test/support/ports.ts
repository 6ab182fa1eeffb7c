import { clusterPorts, type ClusterSpec } from '../../src/ops/cluster.js';
import { portIsFree } from '../../src/ops/ports.js';

/** A TCP port on 127.0.0.1 that was free a moment ago (for a child process to bind): the engine's own helper. */
export { freePort } from '../../src/ops/ports.js';

/** A cluster base port between 20000 and 60000 whose whole block (these orchestrators and workers) is free. */
export async function freeClusterBase(spec: Pick<ClusterSpec, 'orchestrators' | 'workers'>): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 20_000 + Math.floor(Math.random() * 400) * 100;
    if ((await Promise.all(clusterPorts({ ...spec, basePort: base }).map(portIsFree))).every(Boolean)) return base;
  }
  throw new Error('no free port block found between 20000 and 60000');
}
