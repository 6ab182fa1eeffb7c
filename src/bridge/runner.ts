/**
 * The bridge as a step runner for the worker host (src/worker/runners.ts):
 * serialises a claimed step into the payload every language's SDK reads and
 * dispatches it. Structurally typed so this layer imports nothing from
 * worker/ (worker -> bridge only).
 */
import { readdir } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import type { Logger } from '../shared/logger.js';
import { openBridge } from './native-bridge.js';
import type { ForeignError, NativeBridge, TypescriptStepHandler } from './types.js';

/** The fields of a claimed step the bridge needs. */
export interface BridgeStepInput {
  id: string;
  task_id: string;
  name: string;
  handler: string;
  attempt: number;
  timeout_ms: number;
  context: unknown;
  inputs: Record<string, unknown> | null;
  dependency_results: Record<string, unknown> | null;
  batch: { cursor: unknown; index: number; total: number; no_op: boolean } | null;
}

export type BridgeRunOutcome = { ok: true; result: unknown } | { ok: false; error: ForeignError };

/** Matches the worker's StepRunner interface. */
export interface BridgeStepRunner {
  readonly runtime: string;
  handlerKeys(): string[];
  run(step: BridgeStepInput): Promise<BridgeRunOutcome>;
  isBroken(): boolean;
  close(): Promise<void>;
}

/** The JSON every SDK reads (docs/handlers-python-ruby.md). */
export function stepPayload(step: BridgeStepInput): string {
  return JSON.stringify({
    task_id: step.task_id,
    step_id: step.id,
    step_name: step.name,
    attempt: step.attempt,
    context: step.context ?? {},
    inputs: step.inputs ?? {},
    dependency_results: step.dependency_results ?? {},
    batch: step.batch ?? null,
  });
}

/** Imports every .js/.mjs/.ts module under `dir` and collects its exported `handlers` map. */
async function loadTypescriptHandlers(dir: string): Promise<Record<string, TypescriptStepHandler>> {
  const out: Record<string, TypescriptStepHandler> = {};
  const files: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (['.js', '.mjs', '.ts', '.mts'].includes(extname(p)) && !p.endsWith('.d.ts') && !p.includes('.test.')) files.push(p);
    }
  };
  await walk(resolve(dir));
  if (files.some((f) => f.endsWith('ts')) && !process.env.VITEST) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  for (const f of files.sort()) {
    const mod = (await import(pathToFileURL(f).href)) as { handlers?: Record<string, TypescriptStepHandler> };
    for (const [k, fn] of Object.entries(mod.handlers ?? {})) {
      if (k in out) throw new Error(`typescript handler "${k}" is exported twice (again by ${f})`);
      out[k] = fn;
    }
  }
  return out;
}

/**
 * Creates the runner for `runtime`, loading the handlers under `handlersDir`
 * into the embedded interpreter (python, ruby) or registering the exported
 * `handlers` maps of the modules there (typescript through the bridge).
 */
export async function createBridgeRunner(
  runtime: 'python' | 'ruby' | 'typescript',
  handlersDir: string,
  log: Logger,
  bridge: NativeBridge = openBridge(),
): Promise<BridgeStepRunner> {
  const { handlers } =
    runtime === 'typescript'
      ? await bridge.registerTypescriptHandlers(await loadTypescriptHandlers(handlersDir))
      : await bridge.load(runtime, { handlersDir });
  bridge.onBroken((rt, reason) => {
    if (rt === runtime) log.error({ runtime: rt, reason }, 'bridge runtime is broken; this worker must be restarted');
  });
  log.info({ runtime, handlers: handlers.length }, 'bridge runtime loaded');
  return {
    runtime,
    handlerKeys: () => handlers,
    async run(step) {
      const r = await bridge.dispatch(runtime, { handler: step.handler, payload: stepPayload(step), timeoutMs: step.timeout_ms });
      if (r.ok) return { ok: true, result: JSON.parse(r.json) };
      return { ok: false, error: r.error };
    },
    isBroken: () => bridge.isBroken(runtime),
    close: () => bridge.shutdown(),
  };
}
