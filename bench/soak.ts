/**
 * `npm run soak`: memory under sustained load, kept out of the test suite
 * (a threshold on RSS is a measurement, and this machine is noisy).
 *
 * For each runtime it runs test/native/fixtures/rss.mts: 100,000 bridged
 * calls to warm up, then 100,000 more, measuring the growth of native memory,
 * the V8 heap and RSS across the second half. It prints one line per runtime
 * and exits 1 if any growth passes its limit.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../src/shared/paths.js';

const LIMITS_MB = { nativeGrowthMb: 4, heapUsedGrowthMb: 2, rssGrowthMb: 12 }; // RSS: one V8 new-space step (8 MB) on top
const calls = process.argv[2] ?? '100000';
let over = false;
const mb = (n: number) => `${n >= 0 ? '+' : '−'}${Math.abs(n).toFixed(2)} MB`;

for (const rt of ['python', 'ruby', 'typescript']) {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(packageRoot(), 'test', 'native', 'fixtures', 'rss.mts'), rt, calls], {
    cwd: packageRoot(),
    encoding: 'utf8',
    timeout: 300_000,
  });
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  let out: Record<string, number>;
  try {
    out = JSON.parse(last);
  } catch {
    console.log(`${rt}: the probe failed (exit ${r.status}): ${r.stderr.slice(-500)}`);
    over = true;
    continue;
  }
  const broken = Object.entries(LIMITS_MB).filter(([k, limit]) => out[k]! >= limit);
  if (out.failed! > 0 || broken.length > 0) over = true;
  console.log(
    `${rt.padEnd(10)} ${calls} calls after warm-up: native ${mb(out.nativeGrowthMb!)}, heap ${mb(out.heapUsedGrowthMb!)}, ` +
      `RSS ${mb(out.rssGrowthMb!)}, failed calls ${out.failed}${broken.length ? `  OVER: ${broken.map(([k]) => k).join(', ')}` : ''}`,
  );
}
process.exit(over ? 1 : 0);
