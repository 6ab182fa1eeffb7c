import { html } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, can, followEvents, ApiError } from '../api.js';
import { Dag, type DagEdge, type DagNode } from '../dag.js';
import { json, ms, shortId } from '../format.js';
import { When, useNow, useTitle } from '../hooks.js';
import { StateBadge } from './tasks.js';
import { HistoryTable, TaskHistoryPanel, useHistory, type Transition } from './history.js';
import { Waterfall } from './timeline.js';
import type { StepDefinition as TemplateStep, StepView, TaskView as ServerTaskView, TemplateVersion } from '../../src/api/wire-types.js';

/**
 * How the dashboard reads a stored error record: the server types it `unknown`
 * (it is JSON kept as the runtime reported it; ErrorRecordShape in
 * src/core/error-record.ts), and older rows fill fewer fields.
 */
interface StepError {
  language?: string;
  class?: string;
  message?: string;
  backtrace?: string[];
  stack?: string;
  kind?: string;
  permanent?: boolean;
}
/** A step of GET /v1/tasks/:id, with the engine-side additions rendered when present. */
type Step = Omit<StepView, 'error' | 'errors' | 'batch'> & {
  error: StepError | null;
  /** Every failed attempt's error, oldest first, each with its attempt number. */
  errors: Array<StepError & { attempt?: number }>;
  batch: { cursor?: unknown; index?: number; total?: number; no_op?: boolean } | null;
  inputs?: unknown;
  worker_id?: string | null;
  queue?: string | null;
};
export type TaskView = Omit<ServerTaskView, 'steps' | 'error'> & {
  error: { step?: string; reason?: string; error?: StepError } | null;
  steps: Step[];
};

const RESULT_PREVIEW = 4_000;
const NO_HANDLER = new Set(['sleep', 'wait', 'workflow']);
const ACTIVE = new Set(['pending', 'running']);

/** Nodes and edges of a task: its steps, plus template steps it has not made (branches not taken, steps not expanded yet). */
export function taskGraph(task: TaskView, template: TemplateStep[] | undefined): { nodes: DagNode[]; edges: DagEdge[] } {
  const nodes: DagNode[] = task.steps.map((s) => ({
    id: s.name,
    label: s.name,
    state: s.state,
    group: s.type === 'batch_worker' && s.template_step !== s.name ? s.template_step : undefined,
    sub: [
      // Steps that wait run no handler: their runtime says nothing; a workflow step names the template it runs (↳).
      NO_HANDLER.has(s.type) ? '' : s.runtime,
      s.type === 'standard' ? '' : s.type === 'workflow' ? `↳ ${childRef(s, false) ?? 'workflow'}` : s.type,
      s.attempts > 1 ? `attempt ${budgetAttempt(s)}/${s.max_attempts}` : '',
      s.duration_ms !== null ? ms(s.duration_ms) : '',
    ]
      .filter(Boolean)
      .join(' · '),
  }));
  const edges: DagEdge[] = task.steps.flatMap((s) => s.parents.map((p) => ({ from: p, to: s.name })));
  const made = new Set(task.steps.flatMap((s) => [s.name, s.template_step]));
  for (const t of template ?? []) {
    if (made.has(t.name)) continue;
    nodes.push({ id: t.name, label: t.name, ghost: true, sub: `${t.runtime} · ${t.type === 'batch_worker' ? 'batch worker' : 'not created'}` });
    for (const d of t.depends_on) edges.push({ from: d, to: t.name });
  }
  return { nodes, edges };
}

/**
 * The attempt a step is at against its retry budget (`max_attempts` counts
 * failed runs, and a task retry gives a fresh budget): the run going on or
 * the one that succeeded is failures + 1, a step that failed for good
 * counts its failures. Runs lost with a worker or given back use none.
 */
function budgetAttempt(s: Step): number {
  if (s.state === 'error' || s.state === 'cancelled' || s.state === 'failed') return s.failures;
  if (s.attempts === 0) return 0;
  return Math.min(s.failures + 1, s.max_attempts);
}

/** "attempt 2 of 3 · 5 runs in all, 1 lost with its worker": the budget and the total across retries. */
function attemptsText(s: Step): string {
  const n = budgetAttempt(s);
  let head: string;
  if (s.attempts === 0) head = `not run yet (up to ${s.max_attempts} attempts)`;
  else if (s.state === 'error') head = `${n} of ${s.max_attempts} attempts failed`;
  else if (s.state === 'cancelled') head = `cancelled after ${n} failed attempt${n === 1 ? '' : 's'} of ${s.max_attempts}`;
  else if (s.state === 'waiting_retry') head = `${s.failures} of ${s.max_attempts} attempts failed; attempt ${n} waits for its backoff`;
  else if (s.state === 'complete' || s.state === 'succeeded') head = `succeeded on attempt ${n} of ${s.max_attempts}`;
  else head = `attempt ${n} of ${s.max_attempts}`;
  const extra: string[] = [];
  if (s.attempts !== n) extra.push(`${s.attempts} run${s.attempts === 1 ? '' : 's'} in all`);
  if (s.losses > 0) extra.push(`${s.losses} lost with ${s.losses === 1 ? 'its worker' : 'their workers'}`);
  return extra.length ? `${head} · ${extra.join(', ')}` : head;
}

function ErrorBlock(props: { error: StepError; title?: string }) {
  const e = props.error;
  const trace = e.backtrace?.length ? e.backtrace.join('\n') : e.stack;
  return html`<div class="error-block" data-error-class=${e.class}>
    ${props.title && html`<div class="muted">${props.title}</div>`}
    <div>
      <b class="err-class">${e.class ?? 'Error'}</b
      >${e.language ? html` <span class="muted">(${e.language}${e.kind ? `, ${e.kind}` : ''}${e.permanent ? ', permanent' : ''})</span>` : ''}
    </div>
    <div class="err-message">${e.message}</div>
    ${
      trace &&
      html`<details class="backtrace">
        <summary>Backtrace</summary>
        <pre>${trace}</pre>
      </details>`
    }
  </div>`;
}

function download(name: string, value: unknown) {
  const url = URL.createObjectURL(new Blob([json(value)], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function JsonValue(props: { value: unknown; name: string; label: string }) {
  const text = json(props.value);
  const long = text.length > RESULT_PREVIEW;
  return html`<div class="json-value">
    <pre aria-label=${props.label}>${long ? `${text.slice(0, RESULT_PREVIEW)}\n… (${text.length.toLocaleString()} characters in all)` : text}</pre>
    ${long && html`<button class="link" onClick=${() => download(props.name, props.value)}>Download the full ${props.label.toLowerCase()} (JSON)</button>`}
  </div>`;
}

/** A step can run again from its failure: it failed for good, or was cancelled, and its task has ended. */
function retriable(task: TaskView, s: Step): boolean {
  return (s.state === 'error' || s.state === 'cancelled') && (task.state === 'error' || task.state === 'cancelled');
}

function StepPanel(props: { task: TaskView; step: Step; version: number; onAction: (what: string, run: () => Promise<unknown>) => void }) {
  const { step: s, task } = props;
  const history = useHistory(task.id, { step: s.name, enabled: true, version: props.version });
  const decision =
    s.type === 'decision' && (s.result as { $weft?: string; steps?: string[] } | null)?.$weft === 'decision'
      ? (s.result as { steps: string[] }).steps
      : undefined;
  const batches =
    s.type === 'batchable' && (s.result as { $weft?: string; cursors?: unknown[] } | null)?.$weft === 'batches'
      ? (s.result as { cursors: unknown[] }).cursors
      : undefined;
  const workers = batches ? task.steps.filter((o) => o.parents.includes(s.name) && o.type === 'batch_worker') : [];
  const attempts = s.errors?.length
    ? s.errors.map((e, i) => ({ attempt: e.attempt ?? i + 1, error: e, worker_id: undefined as string | undefined }))
    : s.error
      ? [{ attempt: s.attempts, error: s.error, worker_id: s.worker_id ?? undefined }]
      : [];
  const span = (a: string | null, b: string | null) => (a && b ? new Date(b).getTime() - new Date(a).getTime() : null);
  return html`<section class="card step-panel" aria-labelledby="step-title" data-step-panel=${s.name}>
    <div class="page-head">
      <h2 id="step-title">${s.name} <${StateBadge} state=${s.state} /></h2>
      ${
        retriable(task, s) &&
        can('write') &&
        html`<button
          onClick=${() => props.onAction(`Retry step ${s.name}`, () => api(`/v1/tasks/${task.id}/retry`, { method: 'POST', body: { step: s.name } }))}
        >
          Retry step
        </button>`
      }
    </div>
    <dl class="facts">
      <dt>Handler</dt>
      <dd class="mono">${s.handler}</dd>
      <dt>Runtime</dt>
      <dd>${s.runtime}</dd>
      <dt>Type</dt>
      <dd>${s.type}${s.template_step !== s.name ? ` (of ${s.template_step})` : ''}</dd>
      <dt>Attempts</dt>
      <dd data-attempts>${attemptsText(s)}</dd>
      <dt>Worker</dt>
      <dd class="mono">${s.worker_id ?? '–'}</dd>
      ${
        s.queue
          ? html`<dt>Queue</dt>
              <dd class="mono">${s.queue}</dd>`
          : ''
      }
      <dt>Enqueued</dt>
      <dd><${When} at=${s.enqueued_at} /></dd>
      <dt>Queue wait</dt>
      <dd>${ms(span(s.enqueued_at, s.started_at))}</dd>
      <dt>Run</dt>
      <dd>${ms(s.duration_ms)}</dd>
      ${
        s.run_after
          ? html`<dt>${s.state === 'waiting' ? (s.type === 'sleep' ? 'Sleeps until' : 'Times out') : 'Retry after'}</dt>
              <dd data-deadline><${When} at=${s.run_after} /></dd>`
          : s.state === 'waiting'
            ? html`<dt>Waits</dt>
                <dd data-deadline>${s.type === 'workflow' ? 'for its child task to end' : 'for a signal, with no deadline'}</dd>`
            : ''
      }
      ${
        s.type === 'workflow'
          ? html`<dt>Child task</dt>
              <dd data-child>${childLink(s)}</dd>`
          : ''
      }
    </dl>
    ${s.type === 'wait' && s.state === 'waiting' && can('write') && html`<${SignalForm} task=${task} step=${s} onAction=${props.onAction} />`}
    ${decision && html`<p class="outcome" data-decision>Decision: continue with ${decision.length ? decision.map((n, i) => html`${i ? ', ' : ''}<b>${n}</b>`) : 'no step'}</p>`}
    ${batches && html`<p class="outcome" data-batches>Batch fan-out: ${batches.length} cursor${batches.length === 1 ? '' : 's'} → ${workers.length} worker step${workers.length === 1 ? '' : 's'} (${workers.filter((w) => w.state === 'complete').length} complete)</p>`}
    ${
      s.batch &&
      html`<p class="outcome" data-batch>
        ${s.batch.no_op ? 'The placeholder of an empty batch (no-op)' : html`Batch ${String(s.batch.index ?? '?')} of ${String(s.batch.total ?? '?')}; cursor <code>${JSON.stringify(s.batch.cursor)}</code>`}
      </p>`
    }
    ${
      attempts.length > 0 &&
      html`<h3>Attempts with errors</h3>
        <ol class="attempts">
          ${attempts.map((a) => html`<li key=${a.attempt}>${a.error ? html`<${ErrorBlock} error=${a.error} title=${`attempt ${a.attempt}${a.worker_id ? ` on ${a.worker_id}` : ''}`} />` : html`attempt ${a.attempt}: ok`}</li>`)}
        </ol>`
    }
    <h3>Result</h3>
    ${s.result === null || s.result === undefined ? html`<p class="muted">none yet</p>` : html`<${JsonValue} value=${s.result} name=${`${task.id}-${s.name}-result.json`} label="Result" />`}
    ${
      s.inputs !== undefined &&
      html`<h3>Inputs</h3>
        <${JsonValue} value=${s.inputs} name=${`${s.name}-inputs.json`} label="Inputs" />`
    }
    <h3>History</h3>
    ${history.error && html`<p class="form-error" role="alert">${history.error}</p>`}
    ${history.data ? html`<${HistoryTable} transitions=${history.data.transitions} label=${`History of step ${s.name}`} showStep=${false} />` : html`<p class="muted">Loading…</p>`}
  </section>`;
}

/** The template a workflow step runs, `namespace/name@version` (the version when pinned), or only its name. */
function childRef(s: Pick<Step, 'wait'>, whole = true): string | undefined {
  const ref = (s.wait as { workflow?: { namespace: string; name: string; version?: string } } | null)?.workflow;
  if (!ref) return undefined;
  return whole ? `${ref.namespace}/${ref.name}${ref.version ? `@${ref.version}` : ''}` : ref.name;
}

/** A workflow step's child: a link to its task, or why there is none. */
function childLink(s: Step) {
  const what = childRef(s) ?? 'its template';
  if (s.child_task_id) return html`<a href=${`#/tasks/${s.child_task_id}`} title=${s.child_task_id}>${what} ${shortId(s.child_task_id)}</a>`;
  return html`<span class="muted"
    >${s.state === 'waiting' ? `${what}, starting` : s.state === 'pending' ? `${what}, once its parents complete` : `${what}, never started`}</span
  >`;
}

/** A wait step's payload_schema, as the step row keeps it (steps.wait.schema). */
type PayloadSchema = { properties?: Record<string, { type?: string }>; required?: string[] };

/**
 * Signal a waiting `wait` step. A payload_schema with a boolean `approved`
 * gets Approve and Reject buttons (and a comment box when it has a string
 * `comment`); any other step a JSON box. The server checks the payload
 * against the schema and names the field it refuses.
 */
function SignalForm(props: { task: TaskView; step: Step; onAction: (what: string, run: () => Promise<unknown>) => void }) {
  const { task, step } = props;
  const schema = ((step as { wait?: { schema?: PayloadSchema } }).wait?.schema ?? {}) as PayloadSchema;
  const [comment, setComment] = useState('');
  const [text, setText] = useState('{}');
  const [error, setError] = useState<string | null>(null);
  const send = (payload: unknown, what: string) =>
    props.onAction(`${what} ${step.name}`, () => api(`/v1/tasks/${task.id}/steps/${encodeURIComponent(step.name)}/signal`, { method: 'POST', body: payload }));
  if (schema.properties?.approved?.type === 'boolean') {
    const withComment = schema.properties.comment?.type === 'string';
    const payload = (approved: boolean) => (withComment && comment.trim() ? { approved, comment: comment.trim() } : { approved });
    return html`<form class="signal-form" data-signal-form onSubmit=${(e: Event) => e.preventDefault()}>
      <h3>Decision</h3>
      ${withComment && html`<label>Comment <input name="comment" value=${comment} onInput=${(e: Event) => setComment((e.target as HTMLInputElement).value)} /></label>`}
      <button type="button" data-approve onClick=${() => send(payload(true), 'Approve')}>Approve</button>
      <button type="button" data-reject onClick=${() => send(payload(false), 'Reject')}>Reject</button>
    </form>`;
  }
  return html`<form
    class="signal-form"
    data-signal-form
    onSubmit=${(e: Event) => {
      e.preventDefault();
      try {
        send(JSON.parse(text), 'Signal');
        setError(null);
      } catch (err) {
        setError(`not JSON: ${(err as Error).message}`);
      }
    }}
  >
    <h3>Signal</h3>
    <label
      >Payload (JSON) <textarea name="payload" rows="4" value=${text} onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}></textarea>
    </label>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    <button type="submit">Send</button>
  </form>`;
}

/**
 * Cancel after confirming, with a reason the audit trail keeps (a native
 * modal dialog: focus stays in it, Escape closes it).
 */
function CancelDialog(props: { task: TaskView; onAction: (what: string, run: () => Promise<unknown>) => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const confirm = (e: Event) => {
    e.preventDefault();
    dialog.current?.close();
    const body = reason.trim() ? { reason: reason.trim() } : undefined;
    props.onAction('Cancel', () => api(`/v1/tasks/${props.task.id}/cancel`, { method: 'POST', body }));
  };
  return html`<button class="danger" onClick=${() => dialog.current?.showModal()}>Cancel task</button>
    <dialog ref=${dialog} class="card confirm" aria-labelledby="cancel-title">
      <form method="dialog" onSubmit=${confirm}>
        <h2 id="cancel-title">Cancel ${props.task.namespace}/${props.task.name} ${shortId(props.task.id)}?</h2>
        <p>Its open steps stop (running handlers are told to), and it ends as <b>cancelled</b>. It can be retried later.</p>
        <label for="cancel-reason">Reason (kept in the task's history with your token's name)</label>
        <textarea
          id="cancel-reason"
          rows="3"
          maxlength="1000"
          value=${reason}
          onInput=${(e: Event) => setReason((e.target as HTMLTextAreaElement).value)}
        ></textarea>
        <div class="filter-actions">
          <button type="submit" class="danger">Cancel the task</button>
          <button type="button" onClick=${() => dialog.current?.close()}>Keep it running</button>
        </div>
      </form>
    </dialog>`;
}

/** Transitions by step name (the waterfall draws each attempt from them). */
function byStep(transitions: Transition[] | undefined): Map<string, Transition[]> | undefined {
  if (!transitions) return undefined;
  const out = new Map<string, Transition[]>();
  for (const t of transitions) if (t.step !== null) out.set(t.step, [...(out.get(t.step) ?? []), t]);
  return out;
}

/**
 * One task: its DAG (live), the waterfall, a step's details (the selected
 * step is in the URL: #/tasks/ID?step=NAME), its history, and the actions
 * the token allows. Every change arrives as an event and is followed by one
 * GET of the task, so the page shows what the API says, never a guess.
 */
export function TaskPage(props: { id: string; step?: string }) {
  const [task, setTask] = useState<TaskView | null>(null);
  const [version, setVersion] = useState(0);
  const [template, setTemplate] = useState<TemplateStep[] | undefined>(undefined);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState<{ ok: boolean; text: string } | null>(null);
  const [live, setLive] = useState(false);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const selected = props.step;
  useTitle(task ? `Task ${task.namespace}/${task.name} ${shortId(task.id)}${selected ? ` · ${selected}` : ''}` : 'Task');

  const load = async () => {
    try {
      const t = await api<TaskView>(`/v1/tasks/${props.id}`);
      setTask(t);
      setVersion((v) => v + 1);
      setError('');
      return t;
    } catch (err) {
      setError((err as Error).message);
      return undefined;
    }
  };

  useEffect(() => {
    const ctl = new AbortController();
    void load().then(async (t) => {
      if (!t) return;
      const tv = await api<{ versions: TemplateVersion[] }>(`/v1/templates/${t.namespace}/${t.name}`).catch(() => undefined);
      setTemplate(tv?.versions.find((v) => v.version === t.version)?.definition.steps);
    });
    followEvents(`/v1/tasks/${props.id}/events`, ctl.signal, (event) => {
      if (event === 'hello') setLive(true);
      clearTimeout(timer.current);
      timer.current = setTimeout(() => void load(), event === 'hello' ? 0 : 50);
    });
    return () => {
      ctl.abort();
      clearTimeout(timer.current);
    };
  }, [props.id]);

  const graph = useMemo(() => (task ? taskGraph(task, template) : { nodes: [], edges: [] }), [task, template]);
  // Steps that ran more than once (or lost a worker), and sleeps and waits, are drawn stretch by stretch, from the history.
  const fromHistory = task?.steps.some((s) => s.attempts > 1 || s.losses > 0 || s.failures > 0 || s.state === 'waiting_retry' || s.wait !== null) ?? false;
  const history = useHistory(props.id, { enabled: fromHistory, version });
  const historyByStep = useMemo(() => byStep(history.data?.transitions), [history.data]);
  const active = task ? ACTIVE.has(task.state) : false;
  const now = useNow(1_000, active);
  const select = (name: string) => {
    location.hash = `#/tasks/${props.id}?step=${encodeURIComponent(name)}`;
  };

  const act = (what: string, run: () => Promise<unknown>) => {
    setNotice(null);
    run().then(
      (r) => {
        setNotice({ ok: true, text: `${what}: done${(r as { state?: string })?.state ? ` (task ${(r as { state: string }).state})` : ''}` });
        void load();
      },
      (err: Error) => setNotice({ ok: false, text: `${what} failed: ${err instanceof ApiError ? `${err.status} ${err.message}` : err.message}` }),
    );
  };

  if (error && !task)
    return html`<section>
      <h1>Task</h1>
      <p class="form-error" role="alert">${error}</p>
      <a href="#/tasks">All tasks</a>
    </section>`;
  if (!task)
    return html`<section aria-busy="true">
      <h1>Task</h1>
      <p>Loading…</p>
    </section>`;
  const step = task.steps.find((s) => s.name === selected);
  const ghost = !step && selected ? graph.nodes.find((n) => n.id === selected && n.ghost) : undefined;
  const writable = can('write');
  const cancelled = task.state === 'cancelled' ? (task.error as { by?: string; message?: string } | null) : null;

  return html`<section class="task-page" aria-labelledby="task-title" data-task-state=${task.state}>
    <div class="page-head">
      <div>
        <h1 id="task-title">${task.namespace}/${task.name}<span class="muted">@${task.version}</span> <${StateBadge} state=${task.state} /></h1>
        <div class="mono muted">${task.id}</div>
      </div>
      <div class="actions">
        ${writable && ACTIVE.has(task.state) && html`<${CancelDialog} task=${task} onAction=${act} />`}
        ${
          writable &&
          (task.state === 'error' || task.state === 'cancelled') &&
          html`<button onClick=${() => act('Retry', () => api(`/v1/tasks/${task.id}/retry`, { method: 'POST' }))}>Retry task</button>`
        }
        ${!writable && html`<span class="muted" data-read-only>This token may only read: no cancel or retry.</span>`}
      </div>
    </div>
    <p class="notice-slot" role="status">${notice && html`<span class=${notice.ok ? 'ok' : 'form-error'}>${notice.text}</span>`}</p>
    <dl class="facts inline">
      <dt>Created</dt>
      <dd><${When} at=${task.created_at} /></dd>
      <dt>Completed</dt>
      <dd><${When} at=${task.completed_at} /></dd>
      <dt>Duration</dt>
      <dd data-duration>${active ? `${ms(now - new Date(task.created_at).getTime())} so far` : ms(task.duration_ms)}</dd>
      <dt>Live</dt>
      <dd>${live ? 'yes' : 'connecting'}</dd>
      ${
        task.idempotency_key
          ? html`<dt>Idempotency key</dt>
              <dd class="mono">${task.idempotency_key}</dd>`
          : ''
      }
      ${
        task.parent
          ? html`<dt>Child of</dt>
              <dd data-parent>
                <a href=${`#/tasks/${task.parent.task_id}?step=${encodeURIComponent(task.parent.step)}`} title=${task.parent.task_id}
                  >${task.parent.namespace}/${task.parent.name} ${shortId(task.parent.task_id)}</a
                >, step <b>${task.parent.step}</b>
              </dd>`
          : ''
      }
    </dl>
    ${task.error?.error && html`<div class="card task-error"><b>Failed at step ${task.error.step}</b> (${task.error.reason}) <${ErrorBlock} error=${task.error.error} /></div>`}
    ${
      cancelled &&
      html`<div class="card task-error" data-cancelled>
        <b>Cancelled</b
        >${cancelled.by ? html` by <span class="mono">${cancelled.by}</span>` : ''}${cancelled.message ? html`: <span class="cancel-reason">${cancelled.message}</span>` : ' (no reason given)'}
      </div>`
    }
    <div class="task-grid">
      <div class="card">
        <h2>DAG</h2>
        <${Dag} nodes=${graph.nodes} edges=${graph.edges} label=${`Steps of task ${task.id}`} selected=${selected} onSelect=${select} />
      </div>
      <div class="card">
        <h2>Timeline</h2>
        <${Waterfall}
          steps=${task.steps}
          createdAt=${task.created_at}
          completedAt=${task.completed_at}
          delayed=${task.run_at !== null}
          active=${active}
          history=${historyByStep}
          selected=${selected}
          onSelect=${select}
        />
      </div>
    </div>
    ${
      step
        ? html`<${StepPanel} task=${task} step=${step} version=${version} onAction=${act} />`
        : ghost
          ? html`<section class="card step-panel">
              <h2>${ghost.id}</h2>
              <p class="muted">This template step has no step in this task (${ghost.sub}).</p>
            </section>`
          : selected
            ? html`<p class="form-error" role="alert">This task has no step ${selected}.</p>`
            : html`<p class="muted">Select a step in the DAG or the timeline to see its attempts, errors, result, timings and history.</p>`
    }
    <${TaskHistoryPanel} taskId=${task.id} version=${version} />
    <details class="card">
      <summary>Context</summary>
      <${JsonValue} value=${task.context} name=${`${task.id}-context.json`} label="Context" />
    </details>
  </section>`;
}
