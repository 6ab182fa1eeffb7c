import type { WeftConfig } from '../shared/config.js';
import { configuredLogger } from '../shared/logger.js';
import { ValidationError, WeftError } from '../shared/errors.js';
import { HttpUnreachableError, requestJson } from '../shared/http-json.js';
import { getTaskView, type TaskView } from '../store/tasks.js';
import type { StepEvent } from '../worker/worker.js';
import { startEmbeddedEngine } from '../ops/engine.js';
import { serveApi } from '../ops/serve-api.js';

/** `weft run --wait` gave up waiting (--timeout) while the task was still running: not a failure of the task. */
export const EXIT_STILL_RUNNING = 3;

export interface RunOptions {
  context: string;
  wait: boolean;
  json: boolean;
  timeout: number;
  templates: string;
  handlers: string;
  /** Serve the dashboard on 127.0.0.1 while the task runs, and afterwards until Ctrl-C. */
  ui?: boolean;
  port?: number;
}

/**
 * `weft run NAMESPACE/NAME`: submit a task. With WEFT_ORCHESTRATOR_URL it
 * talks to that orchestrator; without, it starts an orchestrator and the
 * workers the template needs in this process (on the embedded PostgreSQL
 * unless WEFT_DATABASE_URL is set), so one command runs a workflow.
 */
export async function runTask(config: WeftConfig, target: string, opts: RunOptions): Promise<number> {
  const m = /^([a-z][a-z0-9_]*)\/([a-z][a-z0-9_]*)(?:@(.+))?$/.exec(target);
  if (!m) throw new ValidationError(`"${target}" is not NAMESPACE/NAME[@VERSION], e.g. e2e_linear/mathematical_sequence`, 'template');
  const [, namespace, name, version] = m as unknown as [string, string, string, string | undefined];
  let context: unknown;
  try {
    context = JSON.parse(opts.context);
  } catch (err) {
    throw new ValidationError(`--context is not JSON: ${(err as Error).message}; e.g. --context '{"even_number": 6}'`, 'context');
  }
  const out = (s: string) => process.stdout.write(`${s}\n`);
  if (config.orchestratorUrl) return runRemote(config.orchestratorUrl, config.apiToken, { namespace, name, version, context }, opts, out);
  return runInProcess(config, { namespace, name, version, context }, opts, out);
}

async function runInProcess(
  config: WeftConfig,
  req: { namespace: string; name: string; version?: string; context: unknown },
  opts: RunOptions,
  out: (s: string) => void,
): Promise<number> {
  const log = configuredLogger(config, { quiet: true });
  const engine = await startEmbeddedEngine(config, log, { templates: opts.templates, handlers: opts.handlers, name: 'run' });
  const { orchestrator, store } = engine;
  let ui: Awaited<ReturnType<typeof serveApi>> | undefined;
  try {
    const { def } = await orchestrator.templates.get(req.namespace, req.name, req.version);
    await engine.addWorkers(new Set(def.steps.map((s) => s.runtime)), [def.namespace]);
    if (opts.ui) {
      ui = await serveApi({
        orchestrator,
        db: store.db,
        bus: engine.bus,
        log,
        host: '127.0.0.1',
        port: opts.port ?? 8080,
        settings: config,
      });
    }
    const t0 = performance.now();
    let taskId = '';
    // The workers finish steps themselves; their events are this run's progress lines.
    const progress = (e: StepEvent) => {
      if (e.task_id !== taskId || opts.json) return;
      out(`  ${stepMark(e.state)} ${e.name.padEnd(28)} ${stepDetail(e).padEnd(24)} ${(performance.now() - t0).toFixed(1).padStart(8)} ms`);
    };
    if (opts.wait) for (const w of engine.workers) w.on('step', progress);
    const created = await orchestrator.createTask(req);
    taskId = created.id;
    if (ui) out(`dashboard: ${ui.url}/#/tasks/${created.id}`);
    let code = 0;
    if (!opts.wait) {
      out(created.id);
    } else {
      if (!opts.json) out(`task ${created.id}  ${def.namespace}/${def.name}@${def.version}`);
      const ended = await orchestrator.waitForTask(created.id, opts.timeout);
      const view = (await getTaskView(store.db, created.id))!;
      code = report(view, ended, opts, out);
    }
    if (ui) {
      out('the dashboard stays up until Ctrl-C');
      await untilSignal();
    }
    return code;
  } finally {
    await ui?.close();
    await engine.stop();
  }
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

async function runRemote(
  base: string,
  token: string | undefined,
  req: { namespace: string; name: string; version?: string; context: unknown },
  opts: RunOptions,
  out: (s: string) => void,
): Promise<number> {
  const url = base.replace(/\/$/, '');
  const res = await requestJson('POST', `${url}/v1/tasks`, { body: req, token });
  const body = res.body as { id?: string; error?: { message: string } } | undefined;
  if (res.status !== 201 || !body?.id) {
    process.stderr.write(`weft: ${res.status} ${body?.error?.message ?? JSON.stringify(body)}\n`);
    return 1;
  }
  if (!opts.wait) {
    out(body.id);
    return 0;
  }
  if (!opts.json) out(`task ${body.id}`);
  const deadline = Date.now() + opts.timeout;
  for (;;) {
    const left = Math.max(0, deadline - Date.now());
    const w = await waitOnce(`${url}/v1/tasks/${body.id}/wait?timeout_ms=${Math.min(left, 30_000)}`, token, left);
    if (!w) continue; // the orchestrator is restarting or its database is away: ask again
    const view = w as TaskView & { ended: boolean };
    if (view.ended || left === 0) {
      if (!opts.json) for (const s of view.steps) out(`  ${stepMark(s.state)} ${s.name.padEnd(28)} ${stepDetail(s)}`);
      return report(view, view.ended, opts, out);
    }
  }
}

/**
 * One long-poll. An orchestrator that is stopping, restarting or without its
 * database answers 503 (or not at all) for a while: wait a little and return
 * undefined, so the caller asks again until its own deadline. Any other
 * answer that is not the task is an error.
 */
async function waitOnce(url: string, token: string | undefined, leftMs: number): Promise<unknown> {
  try {
    const res = await requestJson('GET', url, { token, timeoutMs: Math.min(leftMs, 30_000) + 10_000 });
    if (res.status === 200) return res.body;
    if (res.status !== 503 || leftMs === 0)
      throw new WeftError('api', `${res.status} ${(res.body as { error?: { message?: string } })?.error?.message ?? JSON.stringify(res.body)}`);
  } catch (err) {
    if (!(err instanceof HttpUnreachableError) || leftMs === 0) throw err;
  }
  await new Promise((r) => setTimeout(r, Math.min(1_000, leftMs)));
  return undefined;
}

function report(view: TaskView, ended: boolean, opts: RunOptions, out: (s: string) => void): number {
  if (opts.json) {
    out(JSON.stringify(view, null, 2));
  } else if (!ended) {
    out(`still ${view.state} after ${opts.timeout} ms; it goes on wherever workers serve it (weft worker), or stop it with: weft cancel ${view.id}`);
  } else if (view.state === 'complete') {
    const sinks = view.steps.filter((s) => !view.steps.some((o) => o.parents.includes(s.name)));
    out(`${view.state} in ${view.duration_ms} ms (server side); result: ${sinks.map((s) => `${s.name} = ${JSON.stringify(s.result)}`).join(', ')}`);
  } else if (view.state === 'cancelled') {
    const by = (view.error as { by?: string } | null)?.by;
    out(`cancelled${by ? ` by ${by}` : ''} after ${view.duration_ms} ms`);
  } else {
    const err = view.error as { step?: string; reason?: string; error?: { class?: string; message?: string } } | null;
    out(`${view.state}: step ${err?.step} failed (${err?.reason}): ${err?.error?.class}: ${err?.error?.message}`);
  }
  if (!ended) return EXIT_STILL_RUNNING;
  return view.state === 'complete' ? 0 : 1;
}

function stepMark(state: string): string {
  return { complete: '✓', waiting_retry: '↻', cancelled: '⊘', error: '✗' }[state] ?? '·';
}

/** A step's result, error message, or its state when it has neither (cancelled, not run yet). */
function stepDetail(s: { state: string; result?: unknown; error?: unknown }): string {
  if (s.state === 'complete') return short(s.result);
  const message = (s.error as { message?: string } | null | undefined)?.message;
  if (s.state === 'error' || s.state === 'waiting_retry') return short(message ?? s.error);
  return s.state;
}

function short(value: unknown): string {
  const s = typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
