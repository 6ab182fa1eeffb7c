import { ConfigError } from './errors.js';

/**
 * Every handler runtime weft knows, in one table. The template schema's
 * `runtime` enum, the CLI's choices, the runner factory (src/worker/runners.ts),
 * the bridge's runtime indices (src/bridge/native-bridge.ts), the cluster's
 * ports and handler folders (src/ops/cluster.ts) and weft bench all derive
 * from it; nothing else lists runtimes.
 *
 * Adding a runtime is one row here plus its implementation: a bridged one
 * needs its `RuntimeWorker` in native/<name>/ and its `RuntimeId` in
 * native/common/job.h at `bridgeIndex` (test/native/bridge.runtimes.test.ts
 * pins that the addon agrees); an in-process one needs its branch in
 * createRunner.
 */
export interface RuntimeRow {
  /** What templates write as a step's `runtime`. */
  readonly name: string;
  /** The folder under a handlers directory its handlers live in (shipped: handlers/<handlerDir>). */
  readonly handlerDir: string;
  /**
   * Its index among the native addon's runtimes (native/common/job.h `RuntimeId`,
   * exported by the addon as `runtimes`), or null for a runtime that runs in
   * the worker's own process without the bridge.
   */
  readonly bridgeIndex: number | null;
  /** `weft cluster`: its workers listen from the base port plus this (the seed's layout: 8100 native, 8200 ruby, ...). */
  readonly clusterPortOffset: number;
}

export const RUNTIME_TABLE = [
  { name: 'native', handlerDir: 'typescript', bridgeIndex: null, clusterPortOffset: 20 },
  { name: 'typescript', handlerDir: 'typescript', bridgeIndex: 2, clusterPortOffset: 320 },
  { name: 'python', handlerDir: 'python', bridgeIndex: 0, clusterPortOffset: 220 },
  { name: 'ruby', handlerDir: 'ruby', bridgeIndex: 1, clusterPortOffset: 120 },
] as const satisfies readonly RuntimeRow[];

type Row = (typeof RUNTIME_TABLE)[number];

/** A runtime's name, as templates write it. */
export type Runtime = Row['name'];

/** A runtime that runs behind the native bridge (an embedded interpreter or the bridge's TypeScript lane). */
export type BridgeRuntime = Extract<Row, { bridgeIndex: number }>['name'];

/** Every runtime, in the table's order (the order `--help` and errors list them). */
export const RUNTIMES: readonly Runtime[] = RUNTIME_TABLE.map((r) => r.name);

/** The bridged runtimes, in the addon's index order. */
export const BRIDGE_RUNTIMES: readonly BridgeRuntime[] = RUNTIME_TABLE.filter((r): r is Extract<Row, { bridgeIndex: number }> => r.bridgeIndex !== null)
  .sort((a, b) => a.bridgeIndex - b.bridgeIndex)
  .map((r) => r.name);

/** The table row of a runtime. */
export function runtimeRow(runtime: Runtime): Row {
  return RUNTIME_TABLE.find((r) => r.name === runtime)!;
}

export function isRuntime(name: string): name is Runtime {
  return RUNTIME_TABLE.some((r) => r.name === name);
}

export function isBridgeRuntime(name: string): name is BridgeRuntime {
  return RUNTIME_TABLE.some((r) => r.name === name && r.bridgeIndex !== null);
}

/**
 * `name` as a runtime, or a ConfigError naming `what` and the runtimes there are.
 *
 * @example
 *   parseRuntime('pyhton', '--runtimes') // throws: --runtimes names "pyhton", which is not a runtime; use one of native, typescript, python, ruby
 */
export function parseRuntime(name: string, what: string): Runtime {
  if (isRuntime(name)) return name;
  throw new ConfigError(`${what} names "${name}", which is not a runtime; use one of ${RUNTIMES.join(', ')}`);
}
