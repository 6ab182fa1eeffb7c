// Paste the settings table (src/shared/settings.ts) into README.md and docs/operations.md: npm run docs:settings
import { readFileSync, writeFileSync } from 'node:fs';
import { settingsMarkdown } from '../src/shared/settings.js';
for (const f of ['README.md', 'docs/operations.md']) {
  const lines = readFileSync(f, 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith('| variable | default | meaning |'));
  let end = start;
  while (end < lines.length && lines[end]!.startsWith('|')) end++;
  lines.splice(start, end - start, ...settingsMarkdown().split('\n'));
  writeFileSync(f, lines.join('\n'));
}
