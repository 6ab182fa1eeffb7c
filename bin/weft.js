#!/usr/bin/env node
// The `weft` command. Runs the compiled CLI from dist/; `npm run build` makes it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
if (!existsSync(compiled)) {
  console.error('weft: dist/ is missing. Run `npm run build` (npm install does it for you) and try again.');
  process.exit(2);
}
await import(compiled);
