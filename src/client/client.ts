/**
 * WeftClient: application code's way into a weft orchestrator over its HTTP
 * API (docs/api.md): create tasks (one, delayed, or many in a batch), read,
 * wait for and follow them, signal their wait steps, cancel, retry, list;
 * schedules; register templates; manage tokens. Every answer is typed with
 * the server's own wire types (src/core/api-types.ts); every error answer
 * is a typed class carrying the server's code and status (./errors.ts).
 *
 * Requests go through the global `fetch`, whose connection pool keeps
 * connections alive between calls (one TCP connection serves a whole
 * create-then-wait); each call is bounded by a timeout.
 */
import type {
  CreatedToken,
  ScheduleAuditEvent,
  ScheduleSummary,
  StepChange,
  TaskBatchAnswer,
  TaskEndEvent,
  TaskHistory,
  TaskListPage,
  TaskView,
  TemplateSummary,
  TokenRow,
  TokenScope,
  Wire,
} from '../core/api-types.js';
import type { TaskState } from '../core/states.js';
import { HttpUnreachableError } from '../shared/http-json.js';
import { apiError, ApiUnauthorizedError, ApiUnavailableError } from './errors.js';
import { readServerSentEvents } from './sse.js';

/** A task and every step, as `GET /v1/tasks/:id` answers it. */
export type Task = Wire<TaskView>;
export type TaskStep = Task['steps'][number];
export type TaskList = Wire<TaskListPage>;
export type TaskListItem = TaskList['tasks'][number];
export type History = Wire<TaskHistory>;
export type Template = Wire<TemplateSummary>;
export type ApiToken = Wire<TokenRow>;
export type NewApiToken = Wire<CreatedToken>;
/** What {@link WeftClient.createTasks} answers: counts, and one result per item at its `index` in the list given. */
export type TaskBatch = TaskBatchAnswer;
export type TaskBatchResult = TaskBatchAnswer['results'][number];
/** A schedule, as `/v1/schedules` answers it. */
export type Schedule = Wire<ScheduleSummary>;
export type ScheduleEvent = Wire<ScheduleAuditEvent>;

export interface WeftClientOptions {
  /** The orchestrator, e.g. `http://127.0.0.1:8080` (a path prefix is kept). */
  url: string;
  /** Sent as `Authorization: Bearer <token>` (weft token create). */
  token?: string;
  /** How long one request may take before it fails with HttpUnreachableError (ms; default 30 000). Long-polls add their own wait. */
  timeoutMs?: number;
}

export interface CreateTaskRequest {
  namespace: string;
  name: string;
  /** Default: the highest registered version. */
  version?: string;
  /** The task's input; must satisfy the template's input_schema. Default `{}`. */
  context?: unknown;
  /**
   * At most one task per key: repeating the same request answers the task it
   * made (`created: false`), a different request under it is an ApiConflictError.
   */
  idempotencyKey?: string;
  /** A delayed start: at this time (a Date, or RFC 3339 text with its zone); the task is pending until then. */
  runAt?: Date | string;
  /** A delayed start this long from now (`90s`, `15m`, `3d`); instead of runAt. */
  delay?: string;
}

export interface CreatedTask {
  id: string;
  /** false when an earlier request with the same idempotency key made this task. */
  created: boolean;
}

export interface ListTasksFilter {
  state?: TaskState;
  /** `NAMESPACE/NAME`, or give `namespace` and `name` apart. */
  template?: string;
  namespace?: string;
  name?: string;
  createdAfter?: Date | string;
  createdBefore?: Date | string;
  /** The start of a task id, or an exact idempotency key. */
  q?: string;
  /** 1 … 500 (default 50). */
  limit?: number;
  /** `next_cursor` of the previous page. */
  cursor?: string;
}

export interface CreateTasksOptions {
  /**
   * Items per request (default 1000, the server's default WEFT_TASK_BATCH_LIMIT):
   * a longer list is sent as several batches, one after another.
   */
  batchSize?: number;
}

export interface CreateScheduleRequest {
  /** 1 to 100 of `a-z 0-9 _ -`, starting with a letter. */
  name: string;
  /** `NAMESPACE/NAME`, or `NAMESPACE/NAME@VERSION` to pin a version. */
  template: string;
  /** Five fields (`0 9 * * MON-FRI`), or six with seconds first. */
  cron: string;
  /** An IANA zone the cron is read in (default UTC). */
  timezone?: string;
  /** Every firing's task context; checked against the template's input_schema now. */
  context?: unknown;
  /** A firing while the previous firing's task still runs (default `skip`). */
  overlap?: 'skip' | 'allow' | 'cancel_previous';
  /** Firings missed while no orchestrator ran (default `last`). */
  catchUp?: 'none' | 'last' | 'all';
  /** Create it paused. */
  paused?: boolean;
}

export interface WaitOptions {
  /** Give up after this long and return the task as it is (`ended: false`). Default: wait until it ends. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** What {@link WeftClient.events} yields, in the order the server sends it. */
export type TaskStreamEvent =
  | { event: 'hello'; data: { task_id: string; state: TaskState; live_steps: boolean } }
  | { event: 'step'; data: StepChange }
  | { event: 'task'; data: { kind: 'task' } & TaskEndEvent };

export interface TemplateRegistration {
  namespace: string;
  name: string;
  version: string;
  /** `created`, or `unchanged` when this exact version was registered already. */
  outcome: 'created' | 'unchanged';
}

/** One long-poll asks the server to hold the request at most this long (ms). */
const LONG_POLL_MS = 30_000;
/** A long-poll's request may take this much longer than what it asked the server to wait (ms). */
const LONG_POLL_SLACK_MS = 10_000;
/** How long to wait before asking again after a 503 or a lost connection, when the server did not say (ms). */
const RETRY_PAUSE_MS = 1_000;
const TERMINAL: ReadonlySet<string> = new Set(['complete', 'error', 'cancelled']);
/** Items per batch request unless told otherwise: the server's default WEFT_TASK_BATCH_LIMIT. */
const BATCH_SIZE = 1_000;

/**
 * @example
 *   import { WeftClient } from '@weft/engine/client';
 *   const weft = new WeftClient({ url: 'http://127.0.0.1:8080', token: process.env.WEFT_API_TOKEN });
 *   const { id } = await weft.createTask({ namespace: 'e2e_linear', name: 'mathematical_sequence', context: { even_number: 6 } });
 *   const task = await weft.waitForTask(id);
 *   console.log(task.state, task.steps.map((s) => s.result));
 */
export class WeftClient {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: WeftClientOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new TypeError(`WeftClient: url ${JSON.stringify(options.url)} is not a URL; pass the orchestrator's, e.g. http://127.0.0.1:8080`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new TypeError(`WeftClient: url ${JSON.stringify(options.url)} is not http(s); pass the orchestrator's, e.g. http://127.0.0.1:8080`);
    }
    this.url = options.url.replace(/\/+$/, '');
    this.token = options.token || undefined;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Create a task (201), or get the one an earlier request with the same idempotency key made. */
  async createTask(req: CreateTaskRequest): Promise<CreatedTask> {
    const res = await this.request<{ id: string }>('POST', '/v1/tasks', { body: taskBody(req) });
    return { id: res.body.id, created: res.status === 201 };
  }

  /**
   * Create many tasks, each in one commit per batch (`POST /v1/tasks/batch`).
   * An item that is wrong (unknown template, context failing the
   * input_schema, idempotency key taken by another request) does not stop
   * the others: its result carries its `error`, the rest are created. A list
   * longer than `batchSize` goes as several requests; if one of them fails
   * (ApiError, HttpUnreachableError), the batches before it are created:
   * give items idempotency keys and send the same list again, and those
   * answer `existing`.
   *
   * @example
   *   const { failed, results } = await weft.createTasks(orders.map((o) => ({ namespace: 'shop', name: 'order_flow', context: o, idempotencyKey: `order-${o.id}` })));
   *   for (const r of results) if ('error' in r) console.error(orders[r.index], r.error.message);
   */
  async createTasks(items: CreateTaskRequest[], options: CreateTasksOptions = {}): Promise<TaskBatch> {
    const size = options.batchSize ?? BATCH_SIZE;
    if (!Number.isInteger(size) || size < 1) throw new TypeError(`createTasks: batchSize must be an integer >= 1, got ${String(size)}`);
    const all: TaskBatch = { created: 0, existing: 0, failed: 0, results: [] };
    for (let start = 0; start < items.length; start += size) {
      const tasks = items.slice(start, start + size).map(taskBody);
      const { body } = await this.request<TaskBatch>('POST', '/v1/tasks/batch', { body: { tasks } });
      all.created += body.created;
      all.existing += body.existing;
      all.failed += body.failed;
      for (const r of body.results) all.results.push({ ...r, index: start + r.index });
    }
    return all;
  }

  /** The task and every step (state, attempts, result, error with backtrace, timings). */
  async getTask(id: string): Promise<Task> {
    return (await this.request<Task>('GET', `/v1/tasks/${encodeURIComponent(id)}`)).body;
  }

  /** The task created with this idempotency key. */
  async getTaskByKey(key: string): Promise<Task> {
    return (await this.request<Task>('GET', `/v1/tasks/by-key/${encodeURIComponent(key)}`)).body;
  }

  /**
   * Wait for the task to end and return it. Long-polls the server (30 s at a
   * time); an orchestrator restarting or without its database for a while
   * (503, refused connections) is waited out, not reported.
   */
  async waitForTask(id: string, options: WaitOptions = {}): Promise<Task> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    for (;;) {
      const left = Math.max(0, deadline - Date.now());
      const poll = Math.min(left, LONG_POLL_MS);
      try {
        const res = await this.request<Task>('GET', `/v1/tasks/${encodeURIComponent(id)}/wait?timeout_ms=${poll}`, {
          timeoutMs: poll + LONG_POLL_SLACK_MS,
          signal: options.signal,
        });
        if (res.body.ended || left === 0) return res.body;
      } catch (err) {
        const transient = err instanceof ApiUnavailableError || (err instanceof HttpUnreachableError && !options.signal?.aborted);
        if (!transient || left === 0) throw err;
        await pause(Math.min(retryPauseMs(err), left), options.signal);
      }
    }
  }

  /**
   * The task's changes as they happen (server-sent events): `hello` with its
   * state first, then `step` for each step change and `task` when it ends,
   * where the iteration stops (so it stops at `hello` for a task that has
   * already ended). A stream the orchestrator ends (restart) is reopened.
   * Break out of the loop, or abort `signal`, to stop early.
   *
   * @example
   *   for await (const e of weft.events(id)) if (e.event === 'step') console.log(e.data.name, e.data.state);
   */
  async *events(id: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<TaskStreamEvent> {
    for (;;) {
      const stream = new AbortController();
      const stop = () => stream.abort(options.signal?.reason);
      options.signal?.addEventListener('abort', stop, { once: true });
      let reopenAfterMs = RETRY_PAUSE_MS;
      try {
        const res = await this.open('GET', `/v1/tasks/${encodeURIComponent(id)}/events`, { signal: stream.signal, accept: 'text/event-stream' });
        for await (const raw of readServerSentEvents(res.body!)) {
          const data = JSON.parse(raw.data) as Record<string, unknown>;
          if (raw.event === 'revoked')
            throw new ApiUnauthorizedError(401, { code: 'token_invalid', message: String(data.message) }, `GET /v1/tasks/${id}/events`);
          if (raw.event === 'shutdown') {
            reopenAfterMs = Number(data.retry_after_ms) || RETRY_PAUSE_MS;
            break;
          }
          if (raw.event !== 'hello' && raw.event !== 'step' && raw.event !== 'task') continue;
          const event = { event: raw.event, data } as TaskStreamEvent;
          yield event;
          if (event.event === 'task' || (event.event === 'hello' && TERMINAL.has(event.data.state))) return;
        }
      } catch (err) {
        if (options.signal?.aborted) return;
        const transient = err instanceof ApiUnavailableError || err instanceof HttpUnreachableError || isStreamCut(err);
        if (!transient) throw err;
        reopenAfterMs = retryPauseMs(err);
      } finally {
        options.signal?.removeEventListener('abort', stop);
        stream.abort();
      }
      if (options.signal?.aborted) return;
      await pause(reopenAfterMs, options.signal);
    }
  }

  /** Cancel a pending or running task (ApiConflictError once it has ended). */
  async cancelTask(id: string, options: { reason?: string } = {}): Promise<{ id: string; state: 'cancelled'; interrupted: number }> {
    const body = options.reason === undefined ? {} : { reason: options.reason };
    return (await this.request<{ id: string; state: 'cancelled'; interrupted: number }>('POST', `/v1/tasks/${encodeURIComponent(id)}/cancel`, { body })).body;
  }

  /** Run a failed or cancelled task again from its failed and cancelled steps (or from `step`). */
  async retryTask(id: string, options: { step?: string } = {}): Promise<{ id: string; state: 'running'; enqueued: number }> {
    const body = options.step === undefined ? {} : { step: options.step };
    return (await this.request<{ id: string; state: 'running'; enqueued: number }>('POST', `/v1/tasks/${encodeURIComponent(id)}/retry`, { body })).body;
  }

  /**
   * Complete a waiting `wait` step of a task: `payload` (checked against the
   * step's payload_schema) becomes its result. ApiError 409 when the step is
   * not waiting, 400 naming the payload's field.
   */
  async signalStep(id: string, step: string, payload: unknown): Promise<{ task_id: string; step: string; state: 'complete' }> {
    const url = `/v1/tasks/${encodeURIComponent(id)}/steps/${encodeURIComponent(step)}/signal`;
    return (await this.request<{ task_id: string; step: string; state: 'complete' }>('POST', url, { body: payload ?? null })).body;
  }

  /**
   * The same as {@link signalStep} through a wait step's callback path (its
   * `callback_path`, `/v1/callbacks/<token>`, or the token alone): what a
   * service that was handed only that path calls. It needs no API token.
   */
  async signalCallback(callback: string, payload: unknown): Promise<{ task_id: string; step: string; state: 'complete' }> {
    const token = callback.startsWith('/v1/callbacks/') ? callback.slice('/v1/callbacks/'.length) : callback;
    return (
      await this.request<{ task_id: string; step: string; state: 'complete' }>('POST', `/v1/callbacks/${encodeURIComponent(token)}`, { body: payload ?? null })
    ).body;
  }

  /** One page of tasks, newest first, with counts by state; pass `next_cursor` back as `cursor` for the next. */
  async listTasks(filter: ListTasksFilter = {}): Promise<TaskList> {
    const q = new URLSearchParams();
    let { namespace, name } = filter;
    if (filter.template !== undefined) {
      const m = /^([^/]+)\/([^/@]+)$/.exec(filter.template);
      if (!m) throw new TypeError(`listTasks: template ${JSON.stringify(filter.template)} is not NAMESPACE/NAME, e.g. e2e_linear/mathematical_sequence`);
      [namespace, name] = [m[1], m[2]];
    }
    const set = (k: string, v: string | number | Date | undefined) => {
      if (v !== undefined) q.set(k, v instanceof Date ? v.toISOString() : String(v));
    };
    set('state', filter.state);
    set('namespace', namespace);
    set('name', name);
    set('created_after', filter.createdAfter);
    set('created_before', filter.createdBefore);
    set('q', filter.q);
    set('limit', filter.limit);
    set('cursor', filter.cursor);
    const query = q.toString();
    return (await this.request<TaskList>('GET', `/v1/tasks${query ? `?${query}` : ''}`)).body;
  }

  /** The task's audit trail: every transition, who and why (or one step's). */
  async taskHistory(id: string, options: { step?: string } = {}): Promise<History> {
    const query = options.step === undefined ? '' : `?step=${encodeURIComponent(options.step)}`;
    return (await this.request<History>('GET', `/v1/tasks/${encodeURIComponent(id)}/history${query}`)).body;
  }

  /** Registered template versions. */
  async listTemplates(): Promise<Template[]> {
    return (await this.request<{ templates: Template[] }>('GET', '/v1/templates')).body.templates;
  }

  /** Register a template (admin): its YAML text, or the parsed object. */
  async registerTemplate(template: string | Record<string, unknown>): Promise<TemplateRegistration> {
    const yaml = typeof template === 'string';
    return (await this.request<TemplateRegistration>('POST', '/v1/templates', { body: template, contentType: yaml ? 'application/yaml' : undefined })).body;
  }

  /** Create an API token (admin); its secret is in the answer only. */
  async createToken(name: string, scopes: TokenScope[]): Promise<NewApiToken> {
    return (await this.request<NewApiToken>('POST', '/v1/tokens', { body: { name, scopes } })).body;
  }

  /** API tokens (admin), never their secrets; `all` includes revoked ones. */
  async listTokens(options: { all?: boolean } = {}): Promise<ApiToken[]> {
    return (await this.request<{ tokens: ApiToken[] }>('GET', `/v1/tokens${options.all ? '?all=true' : ''}`)).body.tokens;
  }

  /** Revoke a live token by name or id (admin). */
  async revokeToken(nameOrId: string): Promise<ApiToken> {
    return (await this.request<ApiToken>('POST', `/v1/tokens/${encodeURIComponent(nameOrId)}/revoke`, { body: {} })).body;
  }

  /** Every schedule, by name, with its next firings. */
  async listSchedules(): Promise<Schedule[]> {
    return (await this.request<{ schedules: Schedule[] }>('GET', '/v1/schedules')).body.schedules;
  }

  /**
   * Create a schedule: the template run on the cron in the time zone
   * (docs/schedules.md). ApiInvalidInputError names the field (`cron`,
   * `timezone`, `template`, `context.…`); ApiConflictError when the name is taken.
   *
   * @example
   *   await weft.createSchedule({ name: 'nightly-orders', template: 'reports/nightly_report', cron: '0 2 * * *', timezone: 'Europe/Berlin', context: { report: 'orders' } });
   */
  async createSchedule(req: CreateScheduleRequest): Promise<Schedule> {
    const body: Record<string, unknown> = { name: req.name, template: req.template, cron: req.cron };
    if (req.timezone !== undefined) body.timezone = req.timezone;
    if (req.context !== undefined) body.context = req.context;
    if (req.overlap !== undefined) body.overlap = req.overlap;
    if (req.catchUp !== undefined) body.catch_up = req.catchUp;
    if (req.paused !== undefined) body.paused = req.paused;
    return (await this.request<Schedule>('POST', '/v1/schedules', { body })).body;
  }

  /** One schedule with its latest `events` (audit rows, newest first; default 20). */
  async getSchedule(name: string, options: { events?: number } = {}): Promise<Schedule & { events: ScheduleEvent[] }> {
    const query = options.events === undefined ? '' : `?events=${options.events}`;
    return (await this.request<Schedule & { events: ScheduleEvent[] }>('GET', `/v1/schedules/${encodeURIComponent(name)}${query}`)).body;
  }

  /** Stop a schedule firing (pausing a paused one changes nothing). */
  async pauseSchedule(name: string): Promise<Schedule> {
    return (await this.request<Schedule>('POST', `/v1/schedules/${encodeURIComponent(name)}/pause`)).body;
  }

  /** Fire again from the next time after now; the pause's firings are not caught up. */
  async resumeSchedule(name: string): Promise<Schedule> {
    return (await this.request<Schedule>('POST', `/v1/schedules/${encodeURIComponent(name)}/resume`)).body;
  }

  /** Delete a schedule; its audit rows stay. */
  async deleteSchedule(name: string): Promise<{ name: string; deleted: true }> {
    return (await this.request<{ name: string; deleted: true }>('DELETE', `/v1/schedules/${encodeURIComponent(name)}`)).body;
  }

  /** A JSON request; an error answer throws its typed error. */
  private async request<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    options: { body?: unknown; contentType?: string; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<{ status: number; body: T }> {
    const res = await this.open(method, path, options);
    const text = await res.text();
    return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
  }

  /** The response of a request that succeeded (2xx), its body unread; everything else throws. */
  private async open(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    options: { body?: unknown; contentType?: string; timeoutMs?: number; signal?: AbortSignal; accept?: string },
  ): Promise<Response> {
    const what = `${method} ${path.split('?')[0]}`;
    const headers: Record<string, string> = { accept: options.accept ?? 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = options.contentType ?? 'application/json';
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    }
    // Event streams stay open as long as the task runs: only their caller's signal ends them.
    const timeoutMs = options.accept === 'text/event-stream' ? undefined : (options.timeoutMs ?? this.timeoutMs);
    const signals = [options.signal, timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs)].filter((s): s is AbortSignal => s !== undefined);
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, { method, headers, body, signal: signals.length ? AbortSignal.any(signals) : undefined });
    } catch (err) {
      throw unreachable(err, `${method} ${this.url}${path.split('?')[0]}`, timeoutMs);
    }
    if (res.status < 400) return res;
    const text = await res.text().catch(() => '');
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // a proxy's page: apiError quotes it
    }
    throw apiError(res.status, parsed, what, res.headers.get('retry-after'));
  }
}

/** A task request as the API spells it (POST /v1/tasks, and each item of a batch). */
function taskBody(req: CreateTaskRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { namespace: req.namespace, name: req.name };
  if (req.version !== undefined) body.version = req.version;
  if (req.context !== undefined) body.context = req.context;
  if (req.idempotencyKey !== undefined) body.idempotency_key = req.idempotencyKey;
  if (req.runAt instanceof Date && Number.isNaN(req.runAt.getTime()))
    throw new TypeError('createTask: runAt is an invalid Date; pass a valid Date or RFC 3339 text');
  if (req.runAt !== undefined) body.run_at = req.runAt instanceof Date ? req.runAt.toISOString() : req.runAt;
  if (req.delay !== undefined) body.delay = req.delay;
  return body;
}

function unreachable(err: unknown, what: string, timeoutMs: number | undefined): Error {
  const e = err as Error;
  if (e.name === 'AbortError') return e; // the caller's own signal
  const cause = e.cause as { code?: string; message?: string } | undefined;
  const reason = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause?.code ?? cause?.message ?? e.message);
  const hint = reason === 'ECONNREFUSED' ? ' (nothing listens there: is the orchestrator running, and is the URL right?)' : '';
  return new HttpUnreachableError(`${what}: ${reason}${hint}`, { cause: err });
}

/** A stream cut mid-body (the server went away): fetch's reader fails with a TypeError ("terminated"). */
function isStreamCut(err: unknown): boolean {
  return err instanceof TypeError && /terminated|other side closed/i.test(err.message);
}

function retryPauseMs(err: unknown): number {
  const s = err instanceof ApiUnavailableError ? err.retryAfterS : undefined;
  return s === undefined ? RETRY_PAUSE_MS : Math.min(s * 1000, 5_000);
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
