import type { FastifyInstance } from 'fastify';
import type { BatchItemResult, CreateTaskRequest, Orchestrator } from '../../orchestration/orchestrator.js';
import { ValidationError } from '../../shared/errors.js';
import { assertStorable, assertStorableText } from '../json-body.js';
import { perTokenRateLimit } from '../rate-limits.js';

export interface TaskBatchOptions {
  orchestrator: Orchestrator;
  /** The most tasks one batch may hold (WEFT_TASK_BATCH_LIMIT). */
  batchLimit: number;
  /** Tasks one token may create per minute (WEFT_TASK_RATE_LIMIT); a token may send this / batchLimit batches a minute. */
  createPerMinute: number;
}

/** The item fields POST /v1/tasks takes; anything else in an item is that item's error. */
const ITEM_FIELDS = new Set(['namespace', 'name', 'version', 'context', 'idempotency_key', 'run_at', 'delay']);

/**
 * POST /v1/tasks/batch: `{"tasks": [<a POST /v1/tasks body>, ...]}` → 200
 * `{"created", "existing", "failed", "results": [{index, id, outcome} | {index, error}]}`.
 * All valid items are written in one statement and one commit. Items are
 * checked one by one: a malformed item, an unknown template, a context that
 * fails its input_schema or an idempotency key taken by a different request
 * is that item's error, and the rest are created. Replaying a batch answers
 * the same ids (`outcome: "existing"`) and creates nothing twice.
 */
export async function taskBatchRoutes(app: FastifyInstance, opts: TaskBatchOptions): Promise<void> {
  const batchesPerMinute = Math.max(1, Math.floor(opts.createPerMinute / opts.batchLimit));
  const schema = {
    type: 'object',
    required: ['tasks'],
    additionalProperties: false,
    properties: { tasks: { type: 'array', minItems: 1, maxItems: opts.batchLimit } },
  } as const;
  app.post(
    '/v1/tasks/batch',
    {
      schema: { body: schema },
      config: { rateLimit: perTokenRateLimit('submit', 'task batches', batchesPerMinute, 'WEFT_TASK_RATE_LIMIT / WEFT_TASK_BATCH_LIMIT') },
    },
    async (req) => {
      const results = await createTaskBatch(opts.orchestrator, (req.body as { tasks: unknown[] }).tasks, req.bodyStorable === true);
      const count = (f: (r: BatchItemResult) => boolean) => results.filter(f).length;
      return {
        created: count((r) => 'outcome' in r && r.outcome === 'created'),
        existing: count((r) => 'outcome' in r && r.outcome === 'existing'),
        failed: count((r) => 'error' in r),
        results,
      };
    },
  );
}

/**
 * Check each item as POST /v1/tasks checks its body, then create the valid
 * ones in one statement (Orchestrator.createTasks). Results in the order of
 * `items`; a malformed item is its own error. `storable`: the whole body was
 * already found storable (no escapes in its text).
 */
export async function createTaskBatch(orchestrator: Orchestrator, items: unknown[], storable: boolean): Promise<BatchItemResult[]> {
  const results: BatchItemResult[] = new Array(items.length);
  const valid: Array<{ index: number; req: CreateTaskRequest }> = [];
  items.forEach((item, index) => {
    try {
      valid.push({ index, req: batchItem(item, storable) });
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      results[index] = { index, error: { code: err.code, message: err.message, path: err.path } };
    }
  });
  const stored = await orchestrator.createTasks(valid.map((v) => v.req));
  stored.forEach((r, k) => (results[valid[k]!.index] = { ...r, index: valid[k]!.index }));
  return results;
}

/**
 * One item checked as POST /v1/tasks checks its body (ValidationError naming
 * the field). `storable`: the whole body was already found storable.
 */
function batchItem(item: unknown, storable: boolean): CreateTaskRequest {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    throw new ValidationError(`an item must be an object like a POST /v1/tasks body ({"namespace", "name", "context"?, ...}), got ${describe(item)}`, '');
  }
  const o = item as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => !ITEM_FIELDS.has(k));
  if (extra.length) {
    throw new ValidationError(`unknown field ${extra.map((k) => JSON.stringify(k)).join(', ')}; an item takes ${[...ITEM_FIELDS].join(', ')}`, extra[0]!);
  }
  const text = (field: string, required: boolean, max = Infinity): string | undefined => {
    const v = o[field];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v.length === 0 || v.length > max) {
      throw new ValidationError(`${field} must be a non-empty string${max < Infinity ? ` of at most ${max} characters` : ''}, got ${describe(v)}`, field);
    }
    return v;
  };
  const req: CreateTaskRequest = {
    namespace: text('namespace', true)!,
    name: text('name', true)!,
    version: text('version', false),
    context: o.context,
    idempotency_key: text('idempotency_key', false, 200),
    // A delayed start, as POST /v1/tasks takes it; its value is checked by Orchestrator.createTasks.
    run_at: text('run_at', false, 100),
    delay: text('delay', false, 100),
  };
  if (!storable) {
    assertStorable(req.context ?? {}, 'context');
    assertStorableText(
      { namespace: req.namespace, name: req.name, version: req.version, idempotency_key: req.idempotency_key, run_at: req.run_at, delay: req.delay },
      '',
    );
  }
  return req;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
