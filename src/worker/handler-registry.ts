import { runningUnderVitest } from '../shared/config.js';
import { readdir } from 'node:fs/promises';
import { join, resolve, extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { StepHandler } from './sdk.js';
import { ConfigError } from '../shared/errors.js';

/** Named TypeScript/JavaScript handlers of a worker. */
export class HandlerRegistry {
  private readonly handlers = new Map<string, StepHandler>();

  register(key: string, handler: StepHandler, source = 'code'): void {
    if (typeof handler !== 'function') {
      throw new ConfigError(`handler "${key}" from ${source} is a ${typeof handler}, not a function`);
    }
    if (this.handlers.has(key)) throw new ConfigError(`handler "${key}" is registered twice (again in ${source}); keys must be unique`);
    this.handlers.set(key, handler);
  }

  get(key: string): StepHandler | undefined {
    return this.handlers.get(key);
  }

  keys(): string[] {
    return [...this.handlers.keys()].sort();
  }
}

const LOADABLE = new Set(['.ts', '.mts', '.js', '.mjs']);
let tsLoaderRegistered = false;

/**
 * Import every module under `dir` (recursively) and register what it exports
 * as `handlers` (a map key → function). TypeScript files load directly
 * through tsx, with no build step.
 */
export async function loadHandlerDir(dir: string, registry = new HandlerRegistry()): Promise<HandlerRegistry> {
  const root = resolve(dir);
  let files: string[];
  try {
    files = await listFiles(root);
  } catch (err) {
    throw new ConfigError(`cannot read the handlers directory ${root}: ${(err as Error).message}; pass --handlers DIR with your handler modules`);
  }
  files = files.filter((f) => LOADABLE.has(extname(f)) && !f.endsWith('.d.ts') && !f.includes('.test.'));
  if (files.some((f) => f.endsWith('.ts') || f.endsWith('.mts')) && !tsLoaderRegistered && !runningUnderVitest()) {
    // Both loaders: a `.ts` file in a folder whose package.json does not say
    // "type": "module" (or that has none) is CommonJS to Node, and with only
    // the ESM loader Node failed it with ERR_REQUIRE_CYCLE_MODULE.
    const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
    esm.register();
    cjs.register();
    tsLoaderRegistered = true;
  }
  for (const file of files) {
    const mod = (await import(pathToFileURL(file).href)) as { handlers?: Record<string, StepHandler>; default?: { handlers?: Record<string, StepHandler> } };
    // A CommonJS module (a .ts compiled as CommonJS, or `exports.handlers =`) may show its exports only on `default`.
    const handlers = mod.handlers ?? mod.default?.handlers;
    if (!handlers || typeof handlers !== 'object') continue;
    for (const [key, fn] of Object.entries(handlers)) registry.register(key, fn, file);
  }
  return registry;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else out.push(path);
  }
  return out;
}
