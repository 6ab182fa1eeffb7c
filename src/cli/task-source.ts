/**
 * Where `weft task …`, `weft cancel`, `weft retry`, `weft signal` and `weft templates push`
 * read and change tasks: the orchestrator at WEFT_ORCHESTRATOR_URL through
 * WeftClient (sending WEFT_API_TOKEN), or, without one, the database itself
 * (WEFT_DATABASE_URL, else the embedded PostgreSQL). Both answer with the
 * API's wire shapes and the API's error messages, so every command prints
 * the same whichever way it went.
 */
import { userInfo } from 'node:os';
import type { WeftConfig } from '../shared/config.js';
import { configuredLogger } from '../shared/logger.js';
import { NotFoundError, ValidationError } from '../shared/errors.js';
import { isUuid, processId } from '../shared/ids.js';
import type { Wire } from '../core/api-types.js';
import { TASK_STATES, type TaskState } from '../core/states.js';
import type { TemplateDefinition } from '../core/template/types.js';
import { WeftClient, type ListTasksFilter, type Task, type TaskList, type TemplateRegistration } from '../client/client.js';
import { connectStore, type Store } from '../ops/connect-store.js';
import { orchestratorOptions } from '../ops/process-options.js';
import { createMessageBus } from '../messaging/index.js';
import type { MessageBus } from '../messaging/types.js';
import { Orchestrator } from '../orchestration/orchestrator.js';
import { getTaskViewJson } from '../store/tasks.js';
import { listTasks } from '../store/task-list.js';
import { redactUrl } from '../shared/redact.js';

export interface TaskSource {
  /** Where the answers come from, for messages: the orchestrator's URL or the database. */
  readonly where: string;
  list(filter: ListTasksFilter): Promise<TaskList>;
  get(id: string): Promise<Task>;
  /** The task once it has ended, or as it is after `timeoutMs`. */
  wait(id: string, timeoutMs: number): Promise<Task>;
  cancel(id: string, reason?: string): Promise<{ interrupted: number }>;
  retry(id: string, step?: string): Promise<{ enqueued: number }>;
  /** Complete a waiting `wait` step with `payload` as its result. */
  signal(id: string, step: string, payload: unknown): Promise<{ state: 'complete' }>;
  /** Register a template (as its file's text, for the API; parsed, for the database). */
  register(text: string, def: TemplateDefinition): Promise<TemplateRegistration>;
  close(): Promise<void>;
}

/** The task id a command was given, checked before anything is asked of anyone. */
export function checkTaskId(id: string): string {
  if (!isUuid(id)) throw new ValidationError(`task id "${id}" is not a UUID; \`weft run\` prints it, and \`weft task list\` lists them`, 'id');
  return id;
}

/** A task state given on the command line, checked against the states there are. */
export function checkState(state: string | undefined): TaskState | undefined {
  if (state === undefined) return undefined;
  if (!(TASK_STATES as readonly string[]).includes(state))
    throw new ValidationError(`state must be one of ${TASK_STATES.join(', ')}, got ${JSON.stringify(state)}`, 'state');
  return state as TaskState;
}

export async function openTaskSource(config: WeftConfig, command: string): Promise<TaskSource> {
  if (config.orchestratorUrl) return apiSource(new WeftClient({ url: config.orchestratorUrl, token: config.apiToken }));
  return databaseSource(config, command);
}

function apiSource(client: WeftClient): TaskSource {
  return {
    where: client.url,
    list: (filter) => client.listTasks(filter),
    get: (id) => client.getTask(id),
    wait: (id, timeoutMs) => client.waitForTask(id, { timeoutMs }),
    cancel: (id, reason) => client.cancelTask(id, { reason }),
    retry: (id, step) => client.retryTask(id, { step }),
    signal: (id, step, payload) => client.signalStep(id, step, payload),
    register: (text) => client.registerTemplate(text),
    close: async () => {},
  };
}

/** How often a wait on the database re-reads the task (ms): a command line, not a hot path. */
const WAIT_POLL_MS = 250;

async function databaseSource(config: WeftConfig, command: string): Promise<TaskSource> {
  const log = configuredLogger(config, { quiet: true });
  const store: Store = await connectStore(config, log, { applicationName: `weft-${command}` });
  let orchestrator: Orchestrator | undefined;
  let bus: MessageBus | undefined;
  // Cancel, retry and registration act as an orchestrator would; reads need none.
  const acting = () => {
    bus ??= createMessageBus(config, store.db, log);
    orchestrator ??= new Orchestrator(orchestratorOptions(config, { db: store.db, bus, log, processId: processId(command) }));
    return orchestrator;
  };
  const get = async (id: string): Promise<Task> => {
    const text = await getTaskViewJson(store.db, id);
    if (text === undefined) throw new NotFoundError(`no task ${id}`);
    return JSON.parse(text) as Task;
  };
  const by = `cli:${userInfo().username}`;
  return {
    where: store.source === 'embedded' ? `the embedded PostgreSQL (${config.home}/pg)` : redactUrl(store.db.url),
    async list(filter) {
      let { namespace, name } = filter;
      if (filter.template !== undefined) [namespace, name] = splitTemplate(filter.template);
      const page = await listTasks(store.db, { state: filter.state, namespace, name, q: filter.q }, { limit: filter.limit ?? 50, cursor: filter.cursor });
      // The API's answer is JSON: the same shape, dates as strings.
      return JSON.parse(JSON.stringify(page)) as Wire<typeof page>;
    },
    get,
    async wait(id, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const task = await get(id);
        if (task.ended || Date.now() >= deadline) return task;
        await new Promise((r) => setTimeout(r, Math.min(WAIT_POLL_MS, Math.max(0, deadline - Date.now()))));
      }
    },
    cancel: (id, reason) => acting().cancelTask(id, by, reason),
    retry: (id, step) => acting().retryTask(id, { step, by }),
    signal: (id, step, payload) => acting().signalStep({ task: id, step }, payload, by),
    async register(_text, def) {
      const outcome = await acting().templates.register(def);
      return { namespace: def.namespace, name: def.name, version: def.version, outcome: outcome === 'created' ? 'created' : 'unchanged' };
    },
    async close() {
      await bus?.close();
      await store.close();
    },
  };
}

/** `NAMESPACE/NAME` → its two parts; the error shows the form. */
export function splitTemplate(template: string): [string, string] {
  const m = /^([^/@\s]+)\/([^/@\s]+)$/.exec(template);
  if (!m) throw new ValidationError(`--template "${template}" is not NAMESPACE/NAME, e.g. e2e_linear/mathematical_sequence`, 'template');
  return [m[1]!, m[2]!];
}
