// Bundles the dashboard (dashboard/) into dist/ui with esbuild: app.js, app.css,
// index.html and favicon.svg, served by the orchestrator at `/` (src/api/ui.ts).
// Runs in `npm run build` and `npm install` (prepare); nothing is fetched at
// run time, and nothing is inline: the page works under a Content-Security-Policy
// of 'self' alone (no 'unsafe-inline', no 'unsafe-eval', no data: URLs).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'ui');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: join(root, 'dashboard/main.ts') },
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  outdir: out,
  logLevel: 'warning',
});
await build({
  entryPoints: { app: join(root, 'dashboard/app.css') },
  bundle: true,
  minify: true,
  outdir: out,
  logLevel: 'warning',
});
for (const file of ['index.html', 'favicon.svg']) copyFileSync(join(root, 'dashboard', file), join(out, file));
console.log(`ui: built ${out}`);
