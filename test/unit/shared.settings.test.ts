import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS, settingsHelp, settingsMarkdown } from '../../src/shared/settings.js';

const root = join(import.meta.dirname, '..', '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every WEFT_* name the source mentions (the catalogue itself excluded). */
function namesInSource(): Set<string> {
  const names = new Set<string>();
  for (const file of sourceFiles(join(root, 'src'))) {
    if (file.endsWith(join('shared', 'settings.ts'))) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(/\bWEFT_[A-Z0-9_]*[A-Z0-9]\b/g)) names.add(m[0]);
  }
  return names;
}

describe('settings catalogue', () => {
  const catalogued = new Set(SETTINGS.map((s) => s.name));

  it('lists every WEFT_* variable the source reads', () => {
    const missing = [...namesInSource()].filter((n) => !catalogued.has(n));
    expect(missing, 'add these to SETTINGS in src/shared/settings.ts').toEqual([]);
  });

  it('has no entry nothing reads', () => {
    const used = namesInSource();
    // OpenTelemetry's own variables (OTEL_*) are read by its SDK, not matched here.
    expect(SETTINGS.map((s) => s.name).filter((n) => n.startsWith('WEFT_') && !used.has(n))).toEqual([]);
  });

  it.each(['README.md', 'docs/operations.md'])('is listed in full in %s, as settingsMarkdown() renders it', (doc) => {
    const text = readFileSync(join(root, doc), 'utf8');
    expect(SETTINGS.map((s) => s.name).filter((n) => !text.includes(`\`${n}\``))).toEqual([]);
    expect(text, `the table in ${doc} is out of date: run npm run docs:settings`).toContain(settingsMarkdown());
  });

  it('renders one help line per setting, with its default', () => {
    const lines = settingsHelp().split('\n');
    expect(lines).toHaveLength(SETTINGS.length);
    expect(lines.find((l) => l.includes('WEFT_LEASE_MS'))).toMatch(/default: 30000\)$/);
  });
});
