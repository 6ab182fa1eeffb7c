import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Database } from '../../store/database.js';
import { templateVersions } from '../../store/template-versions.js';
import { NotFoundError } from '../../shared/errors.js';
import { packageRoot } from '../../shared/paths.js';

export interface CatalogRoutesOptions {
  db: Database;
  /** Where `weft bench` writes its results; default `<package>/bench/results`. */
  benchDir?: string;
}

/**
 *   GET /v1/templates/:namespace/:name   every version of a template with its definition (the DAG)
 *   GET /v1/bench                        the latest `weft bench` document per backend and the latest bridge run
 */
export async function catalogRoutes(app: FastifyInstance, opts: CatalogRoutesOptions): Promise<void> {
  const { db } = opts;
  const benchDir = opts.benchDir ?? join(packageRoot(), 'bench', 'results');

  app.get('/v1/templates/:namespace/:name', async (req) => {
    const { namespace, name } = req.params as { namespace: string; name: string };
    const versions = await templateVersions(db, namespace, name);
    if (versions.length === 0) throw new NotFoundError(`no template ${namespace}/${name} is registered; GET /v1/templates lists them`);
    return { namespace, name, versions };
  });

  app.get('/v1/bench', async () => latestBench(benchDir));
}

/**
 * Result directories are named `<UTC time>-<backend>`, bridge runs
 * `bridge-<UTC time>.json`, so the lexically last name is the newest.
 */
async function latestBench(dir: string): Promise<{ runs: Record<string, unknown>; bridge: unknown }> {
  const names = (await readdir(dir).catch(() => [] as string[])).sort().reverse();
  const runs: Record<string, unknown> = {};
  for (const n of names) {
    const m = /^\d{4}-.*-(pg|rabbitmq)$/.exec(n);
    if (!m || runs[m[1]!]) continue;
    const doc = await readFile(join(dir, n, 'percentiles.json'), 'utf8').then(JSON.parse, () => undefined);
    if (doc) runs[m[1]!] = { ...doc, results_dir: n };
  }
  const bridgeFile = names.find((n) => /^bridge-.*\.json$/.test(n));
  const bridge = bridgeFile
    ? await readFile(join(dir, bridgeFile), 'utf8').then(
        (t) => ({ ...JSON.parse(t), file: bridgeFile }),
        () => null,
      )
    : null;
  // Names relative to bench/results only: the server's own directories are none of a caller's business.
  return { runs, bridge };
}
