import type { FastifyInstance } from 'fastify';
import type { Database } from '../../store/database.js';
import type { MessageBus } from '../../messaging/types.js';
import { listProcesses, DEFAULT_STALE_AFTER_MS } from '../../store/processes.js';
import { readActivity } from '../../store/activity.js';
import { stepQueue } from '../../messaging/queues.js';
import { namespaceRuntimes } from '../../store/templates.js';
import { ValidationError } from '../../shared/errors.js';
import { intParam } from '../params.js';

export interface SystemRoutesOptions {
  db: Database;
  bus: MessageBus;
}

/**
 * What runs and how fast:
 *
 *   GET /v1/workers   every registered process (workers and orchestrators) with heartbeat age and `stale`
 *   GET /v1/stats     steps/s, task latency percentiles, per-runtime queue wait and run time over a window;
 *                     queue depth; this orchestrator's database pool
 */
export async function systemRoutes(app: FastifyInstance, opts: SystemRoutesOptions): Promise<void> {
  const { db, bus } = opts;

  app.get('/v1/workers', async (req) => {
    const staleAfterMs = intParam((req.query as { stale_after_ms?: string }).stale_after_ms, 'stale_after_ms', DEFAULT_STALE_AFTER_MS, 100, 3_600_000);
    const all = await listProcesses(db, { staleAfterMs });
    return { stale_after_ms: staleAfterMs, workers: all.filter((p) => p.kind === 'worker'), orchestrators: all.filter((p) => p.kind === 'orchestrator') };
  });

  app.get('/v1/stats', async (req) => {
    const q = req.query as { window_s?: string; bucket_s?: string };
    const windowS = intParam(q.window_s, 'window_s', 900, 10, 86_400);
    const bucketS = intParam(q.bucket_s, 'bucket_s', Math.max(1, Math.round(windowS / 90)), 1, 3_600);
    if (windowS % bucketS !== 0 || windowS / bucketS > 1_000) {
      throw new ValidationError(`window_s (${windowS}) must be a multiple of bucket_s (${bucketS}) and at most 1000 buckets long`, 'bucket_s');
    }
    const [activity, queues] = await Promise.all([readActivity(db, windowS, bucketS), queueDepth(db, bus)]);
    return { ...activity, queue_depth: queues, pool: db.poolStats() };
  });
}

async function queueDepth(db: Database, bus: MessageBus): Promise<Record<string, number>> {
  return bus.depth((await namespaceRuntimes(db)).map((r) => stepQueue(r.namespace, r.runtime)));
}
