import type { WeftConfig } from '../shared/config.js';
import { configuredLogger } from '../shared/logger.js';
import { ValidationError } from '../shared/errors.js';
import { getTaskViewJson } from '../store/tasks.js';
import { WeftClient, type Task } from '../client/client.js';
import { ms, stepLine } from './task-format.js';
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
  /** A delayed start: at this RFC 3339 time (`--at`), or this long from now (`--in 15m`). */
  at?: string;
  in?: string;
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
  const later = { ...(opts.at !== undefined ? { run_at: opts.at } : {}), ...(opts.in !== undefined ? { delay: opts.in } : {}) };
  if (config.orchestratorUrl)
    return runRemote(
      new WeftClient({ url: config.orchestratorUrl, token: config.apiToken }),
      { namespace, name, version, context, runAt: later.run_at, delay: later.delay },
      opts,
      out,
    );
  return runInProcess(config, { namespace, name, version, context, ...later }, opts, out);
}

async function runInProcess(
  config: WeftConfig,
  req: { namespace: string; name: string; version?: string; context: unknown; run_at?: string; delay?: string },
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
    const read = async (id: string) => JSON.parse((await getTaskViewJson(store.db, id))!) as Task;
    const lines = new StepLines(out);
    let taskId = '';
    let reading = Promise.resolve();
    // The workers finish steps themselves; each of their events shows the steps that finished since the last.
    const progress = (e: StepEvent) => {
      if (e.task_id !== taskId || opts.json) return;
      reading = reading.then(async () => lines.show(await read(taskId))).catch(() => undefined);
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
      await orchestrator.waitForTask(created.id, opts.timeout);
      for (const w of engine.workers) w.off('step', progress);
      await reading;
      const task = await read(created.id);
      if (!opts.json) lines.show(task);
      code = report(task, opts, out);
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

/**
 * Through an orchestrator's API (WeftClient): create, then follow the task's
 * event stream to show steps as they finish while a long-poll waits for its
 * end. The lines are those of the in-process mode (src/cli/task-format.ts).
 */
async function runRemote(
  client: WeftClient,
  req: { namespace: string; name: string; version?: string; context: unknown; runAt?: string; delay?: string },
  opts: RunOptions,
  out: (s: string) => void,
): Promise<number> {
  const { id } = await client.createTask(req);
  if (!opts.wait) {
    out(id);
    return 0;
  }
  const first = await client.getTask(id);
  if (!opts.json) out(`task ${id}  ${first.namespace}/${first.name}@${first.version}`);
  const lines = new StepLines(out);
  const following = new AbortController();
  let reading = Promise.resolve();
  const follow = (async () => {
    if (opts.json) return;
    for await (const e of client.events(id, { signal: following.signal })) {
      if (e.event === 'step') reading = reading.then(async () => lines.show(await client.getTask(id))).catch(() => undefined);
    }
  })().catch(() => undefined); // progress lines are a courtesy: the wait below decides
  try {
    const task = await client.waitForTask(id, { timeoutMs: opts.timeout });
    following.abort();
    await follow;
    await reading;
    if (!opts.json) lines.show(task);
    return report(task, opts, out);
  } finally {
    following.abort();
  }
}

/** Step lines, each shown once per state and attempt, in the order they are seen. */
class StepLines {
  private readonly seen = new Set<string>();
  constructor(private readonly out: (s: string) => void) {}
  show(task: Task): void {
    for (const s of task.steps) {
      if (!SHOWN_STATES.has(s.state)) continue;
      const key = `${s.id}:${s.state}:${s.attempts}`;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      this.out(stepLine(s));
    }
  }
}

/** Step states a run shows a line for: the ends of an attempt. */
const SHOWN_STATES: ReadonlySet<string> = new Set(['complete', 'waiting_retry', 'error', 'cancelled']);

function report(view: Task, opts: RunOptions, out: (s: string) => void): number {
  if (opts.json) {
    out(JSON.stringify(view, null, 2));
  } else if (!view.ended) {
    out(`still ${view.state} after ${opts.timeout} ms; it goes on wherever workers serve it (weft worker), or stop it with: weft cancel ${view.id}`);
  } else if (view.state === 'complete') {
    const sinks = view.steps.filter((s) => !view.steps.some((o) => o.parents.includes(s.name)));
    out(`${view.state} in ${ms(view.duration_ms)} (server side); result: ${sinks.map((s) => `${s.name} = ${JSON.stringify(s.result)}`).join(', ')}`);
  } else if (view.state === 'cancelled') {
    const by = (view.error as { by?: string } | null)?.by;
    out(`cancelled${by ? ` by ${by}` : ''} after ${ms(view.duration_ms)}`);
  } else {
    const err = view.error as { step?: string; reason?: string; error?: { class?: string; message?: string } } | null;
    out(`${view.state}: step ${err?.step} failed (${err?.reason}): ${err?.error?.class}: ${err?.error?.message}`);
  }
  return exitCodeOf(view);
}

/** A task that ended well exits 0, one that failed or was cancelled 1, one still running EXIT_STILL_RUNNING. */
export function exitCodeOf(task: { state: string; ended: boolean }): number {
  if (!task.ended) return EXIT_STILL_RUNNING;
  return task.state === 'complete' ? 0 : 1;
}
