import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { packageRoot } from '../shared/paths.js';

/** Where `npm run build` (scripts/build-ui.mjs) puts the dashboard's bundle. */
export function uiDir(): string {
  return join(packageRoot(), 'dist', 'ui');
}

/**
 * The dashboard: static files at `/` (index.html, app.js, app.css), built by
 * esbuild at `npm run build` and shipped in the package; nothing from a CDN.
 * Without a build the page says how to make one instead of a 404.
 */
export async function uiRoutes(app: FastifyInstance, opts: { dir?: string } = {}): Promise<void> {
  const dir = opts.dir ?? uiDir();
  if (!existsSync(join(dir, 'index.html'))) {
    app.get('/', async (_req, reply) =>
      reply
        .status(503)
        .type('text/html; charset=utf-8')
        .send(
          `<!doctype html><title>weft</title><p>The dashboard is not built: run <code>npm run build</code> in ${dir.replace(/\/dist\/ui$/, '')} and reload.</p>`,
        ),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    index: 'index.html',
    // The bundle's file names do not change between builds: revalidate.
    cacheControl: true,
    maxAge: 0,
    setHeaders(res) {
      res.setHeader('x-content-type-options', 'nosniff');
    },
  });
}
