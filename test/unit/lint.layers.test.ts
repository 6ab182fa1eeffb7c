import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ESLint } from 'eslint';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

/** Lint `code` as if it were the file `path` of the repository; the messages of `rule`. */
async function lintAs(path: string, code: string, rule: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: root });
  const [result] = await eslint.lintText(code, { filePath: join(root, path) });
  return result!.messages.filter((m) => m.ruleId === rule).map((m) => m.message);
}

describe('lint layers (eslint.config.js)', () => {
  it('gives every folder of src/ a row in the layer table', async () => {
    // A specifier typed as string: the config is plain JavaScript, read here at run time.
    const config: string = '../../eslint.config.js';
    const { ABOVE } = (await import(config)) as { ABOVE: Record<string, string[]> };
    const folders = readdirSync(join(root, 'src'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect(folders.filter((f) => !(f in ABOVE))).toEqual([]);
    expect(Object.keys(ABOVE).filter((f) => !folders.includes(f))).toEqual([]);
  });

  it.each([
    ['src/telemetry/probe.ts', '../worker/worker.js', 'src/telemetry sits below src/worker'],
    ['src/core/probe.ts', '../telemetry/index.js', 'src/core sits below src/telemetry'],
    ['src/examples/probe.ts', '../orchestration/orchestrator.js', 'src/examples sits below src/orchestration'],
    ['src/store/probe.ts', '../telemetry/index.js', 'src/store sits below src/telemetry'],
  ])('refuses an upward import: %s importing %s', async (file, target, message) => {
    const messages = await lintAs(file, `import { x } from '${target}';\nexport const y = x;\n`, 'import-x/no-restricted-paths');
    expect(messages.join('\n')).toContain(message);
  });

  it('allows a downward import (messaging -> telemetry)', async () => {
    expect(
      await lintAs('src/messaging/probe.ts', "import { tracing } from '../telemetry/index.js';\nexport const y = tracing;\n", 'import-x/no-restricted-paths'),
    ).toEqual([]);
  });

  it('refuses process.env outside the config module, naming where settings are read', async () => {
    const messages = await lintAs('src/worker/probe.ts', 'export const level = process.env.WEFT_LOG_LEVEL;\n', 'no-restricted-properties');
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('add the variable to loadConfig (src/shared/config.ts)');
    expect(await lintAs('src/shared/config.ts', 'export const level = process.env.WEFT_LOG_LEVEL;\n', 'no-restricted-properties')).toEqual([]);
  });

  it('lets the dashboard import the wire types, type-only, and nothing else of src/', async () => {
    const rule = '@typescript-eslint/no-restricted-imports';
    const typeOnly = "import type { TaskView } from '../src/api/wire-types.js';\nexport type T = TaskView;\n";
    expect(await lintAs('dashboard/probe.ts', typeOnly, rule)).toEqual([]);
    const value = await lintAs('dashboard/probe.ts', "import { Wire } from '../src/api/wire-types.js';\nexport type T = Wire<Date>;\n", rule);
    expect(value.join('\n')).toContain('import the wire types with `import type`');
    const other = await lintAs('dashboard/views/probe.ts', "import type { StepView } from '../../src/store/tasks.js';\nexport type T = StepView;\n", rule);
    expect(other.join('\n')).toContain('the dashboard imports nothing of src/ but the wire types');
  });

  it('refuses a server module importing the dashboard', async () => {
    const messages = await lintAs('src/api/probe.ts', "import { api } from '../../dashboard/api.js';\nexport const y = api;\n", 'import-x/no-restricted-paths');
    expect(messages.join('\n')).toContain('src/ must not import the dashboard');
  });
});

/** Every .ts file under `dir`, recursively, by absolute path. */
function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/**
 * The import cycles among `files` (path → source), each as the paths in it:
 * every relative import, export-from and import() counts, `import type`
 * included. eslint's import-x/no-cycle skips type-only imports, which is how
 * a cycle of types between orchestration/live-events.ts and task-events.ts
 * once passed lint.
 */
function importCycles(files: Map<string, string>): string[][] {
  const edges = new Map<string, string[]>();
  for (const [file, source] of files) {
    const targets = ts
      .preProcessFile(source, true, true)
      .importedFiles.map((f) => f.fileName)
      .filter((name) => name.startsWith('.'))
      .map((name) => resolve(dirname(file), name).replace(/\.js$/, '.ts'))
      .map((target) => (files.has(target) ? target : target.replace(/\.ts$/, '/index.ts')))
      .filter((target) => files.has(target));
    edges.set(file, targets);
  }
  // Tarjan's strongly connected components: a component of more than one file (or a file importing itself) is a cycle.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || edges.get(v)!.includes(v)) cycles.push(component.sort());
  };
  for (const file of edges.keys()) if (!index.has(file)) visit(file);
  return cycles;
}

describe('import cycles, type-only imports included', () => {
  it('finds a cycle made only of `import type`', () => {
    const a = join(root, 'src/orchestration/a.ts');
    const b = join(root, 'src/orchestration/b.ts');
    const files = new Map([
      [a, "import type { B } from './b.js';\nexport interface A { b: B }\n"],
      [b, "import type { A } from './a.js';\nexport interface B { a: A }\n"],
    ]);
    expect(importCycles(files)).toEqual([[a, b]]);
  });

  it('src/ and dashboard/ have none', () => {
    const files = new Map([...tsFiles(join(root, 'src')), ...tsFiles(join(root, 'dashboard'))].map((f) => [f, readFileSync(f, 'utf8')]));
    expect(files.size).toBeGreaterThan(100);
    expect(importCycles(files).map((c) => c.map((f) => relative(root, f)))).toEqual([]);
  });
});
