import { describe, expect, it } from 'vitest';

import { BRIDGE_RUNTIMES, isBridgeRuntime, parseRuntime, RUNTIME_TABLE, RUNTIMES, runtimeRow } from '../../src/shared/runtimes.js';
import { BACKENDS, backendRow, isBackend } from '../../src/shared/backends.js';
import { ConfigError } from '../../src/shared/errors.js';
import { clusterPorts, parseWorkers } from '../../src/ops/cluster.js';
import { parseTemplate } from '../../src/core/template/parse.js';

describe('the runtime table', () => {
  it('lists each runtime once, with its handler folder', () => {
    expect(RUNTIMES).toEqual(['native', 'typescript', 'python', 'ruby']);
    expect(new Set(RUNTIMES).size).toBe(RUNTIMES.length);
    expect(RUNTIMES.map((r) => runtimeRow(r).handlerDir)).toEqual(['typescript', 'typescript', 'python', 'ruby']);
  });

  it('derives the bridged runtimes in the addon index order, and no two share an index or a cluster port range', () => {
    expect(BRIDGE_RUNTIMES).toEqual(['python', 'ruby', 'typescript']);
    expect(RUNTIMES.filter(isBridgeRuntime)).toEqual(['typescript', 'python', 'ruby']);
    const offsets = RUNTIME_TABLE.map((r) => r.clusterPortOffset).sort((a, b) => a - b);
    for (let i = 1; i < offsets.length; i++) expect(offsets[i]! - offsets[i - 1]!).toBeGreaterThanOrEqual(100);
  });

  it('drives the cluster: --workers names, worker ports', () => {
    expect(parseWorkers('ruby=2,typescript')).toEqual({ ruby: 2, typescript: 1 });
    expect(() => parseWorkers('lua=1')).toThrow('--workers names runtime "lua"; use native, typescript, python, ruby as runtime=count, e.g. native=2,python=2');
    expect(clusterPorts({ orchestrators: 1, workers: { native: 1, ruby: 2, python: 1, typescript: 1 }, basePort: 8080 })).toEqual([
      8080, 8100, 8400, 8300, 8200, 8201,
    ]);
  });

  it('drives the template schema', () => {
    const yaml = (rt: string) => `namespace: n\nname: t\nversion: 1.0.0\nsteps:\n  - { name: a, handler: n.a, runtime: ${rt} }\n`;
    for (const rt of RUNTIMES) expect(parseTemplate(yaml(rt), 't.yaml').steps[0]!.runtime).toBe(rt);
    expect(() => parseTemplate(yaml('lua'), 't.yaml')).toThrow(/native, typescript, python, ruby/);
  });

  it('parseRuntime names what was wrong and the runtimes there are', () => {
    expect(parseRuntime('ruby', '--runtimes')).toBe('ruby');
    expect(() => parseRuntime('pyhton', '--runtimes')).toThrow(ConfigError);
    expect(() => parseRuntime('pyhton', '--runtimes')).toThrow(
      '--runtimes names "pyhton", which is not a runtime; use one of native, typescript, python, ruby',
    );
  });
});

describe('the backend list', () => {
  it('lists pg and rabbitmq, with what a starting worker waits for', () => {
    expect(BACKENDS).toEqual(['pg', 'rabbitmq']);
    expect(BACKENDS.map((b) => backendRow(b).waitsFor)).toEqual(['database', 'broker']);
    expect(isBackend('kafka')).toBe(false);
  });
});
