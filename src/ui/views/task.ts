import { html } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, followEvents, ApiError } from '../api.js';
import { Dag, layoutDag, type DagEdge, type DagNode } from '../dag.js';
import { json, ms, stateClass, time } from '../format.js';
import { StateBadge } from './tasks.js';
import type { Wire } from '../wire.js';
import type { StepView, TaskView as StoreTaskView } from '../../store/tasks.js';

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
type Step = Omit<Wire<StepView>, 'error' | 'errors' | 'batch'> & {
  error: StepError | null;
  /** Every failed attempt's error, oldest first, each with its attempt number. */
  errors: Array<StepError & { attempt?: number }>;
  batch: { cursor?: unknown; index?: number; total?: number; no_op?: boolean } | null;
  inputs?: unknown;
  worker_id?: string | null;
  queue?: string | null;
};
export type TaskView = Omit<Wire<StoreTaskView>, 'steps' | 'error'> & {
  error: { step?: string; reason?: string; error?: StepError } | null;
  steps: Step[];
};
interface TemplateStep {
  name: string;
  depends_on: string[];
  runtime: string;
  type: string;
  handler: string;
}
interface TemplateVersions {
  versions: Array<{ version: string; definition: { steps: TemplateStep[]; input_schema?: unknown } }>;
}

const RESULT_PREVIEW = 4_000;
const ACTIVE = new Set(['pending', 'running']);

/** Nodes and edges of a task: its steps, plus template steps it has not made (branches not taken, steps not expanded yet). */
export function taskGraph(task: TaskView, template: TemplateStep[] | undefined): { nodes: DagNode[]; edges: DagEdge[] } {
  const nodes: DagNode[] = task.steps.map((s) => ({
    id: s.name,
    label: s.name,
    state: s.state,
    sub: `${s.runtime} · ${s.type === 'standard' ? '' : `${s.type} · `}${s.attempts > 1 ? `${s.attempts} attempts · ` : ''}${s.duration_ms !== null ? ms(s.duration_ms) : ''}`,
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

function StepPanel(props: { task: TaskView; step: Step; onAction: (what: string, run: () => Promise<unknown>) => void }) {
  const { step: s, task } = props;
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
      ${s.state === 'error' && html`<button onClick=${() => props.onAction(`Retry step ${s.name}`, () => api(`/v1/tasks/${task.id}/retry`, { method: 'POST', body: { step: s.name } }))}>Retry step</button>`}
    </div>
    <dl class="facts">
      <dt>Handler</dt>
      <dd class="mono">${s.handler}</dd>
      <dt>Runtime</dt>
      <dd>${s.runtime}</dd>
      <dt>Type</dt>
      <dd>${s.type}${s.template_step !== s.name ? ` (of ${s.template_step})` : ''}</dd>
      <dt>Attempts</dt>
      <dd>${s.attempts} of ${s.max_attempts}</dd>
      <dt>Worker</dt>
      <dd class="mono">${s.worker_id ?? '–'}</dd>
      ${
        s.queue
          ? html`<dt>Queue</dt>
              <dd class="mono">${s.queue}</dd>`
          : ''
      }
      <dt>Enqueued</dt>
      <dd>${time(s.enqueued_at)}</dd>
      <dt>Queue wait</dt>
      <dd>${ms(span(s.enqueued_at, s.started_at))}</dd>
      <dt>Run</dt>
      <dd>${ms(s.duration_ms)}</dd>
      ${
        s.run_after
          ? html`<dt>Retry after</dt>
              <dd>${time(s.run_after)}</dd>`
          : ''
      }
    </dl>
    ${decision && html`<p class="outcome" data-decision>Decision: continue with ${decision.length ? decision.map((n, i) => html`${i ? ', ' : ''}<b>${n}</b>`) : 'no step'}</p>`}
    ${batches && html`<p class="outcome" data-batches>Batch fan-out: ${batches.length} cursor${batches.length === 1 ? '' : 's'} → ${workers.length} worker step${workers.length === 1 ? '' : 's'} (${workers.filter((w) => w.state === 'complete').length} complete)</p>`}
    ${s.batch && html`<p class="outcome">Batch ${String((s.batch.index ?? 0) + 1)} of ${String(s.batch.total ?? '?')}${s.batch.no_op ? ' (no-op)' : ''}; cursor <code>${JSON.stringify(s.batch.cursor)}</code></p>`}
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
  </section>`;
}

/** enqueued → started → finished of every step on one time axis from the task's creation. */
function Waterfall(props: { task: TaskView; selected?: string; onSelect: (name: string) => void }) {
  const { task } = props;
  const t0 = new Date(task.created_at).getTime();
  const now = Date.now();
  const end = Math.max(
    task.completed_at ? new Date(task.completed_at).getTime() : now,
    ...task.steps.map((s) => new Date(s.finished_at ?? s.started_at ?? s.enqueued_at ?? s.created_at).getTime()),
  );
  const total = Math.max(1, end - t0);
  const pct = (t: string | null, fallback: number) => (100 * ((t ? new Date(t).getTime() : fallback) - t0)) / total;
  return html`<div class="waterfall" role="table" aria-label="Step timings: created, enqueued, started, finished">
    <div class="wf-row wf-axis" role="row">
      <span role="columnheader">step</span
      ><span role="columnheader" class="wf-scale"><span>0</span><span>${ms(total / 2)}</span><span>${ms(total)}</span></span>
    </div>
    ${[...task.steps]
      .sort((a, b) => new Date(a.enqueued_at ?? a.created_at).getTime() - new Date(b.enqueued_at ?? b.created_at).getTime())
      .map((s) => {
        const created = pct(s.created_at, t0);
        const enq = s.enqueued_at ? pct(s.enqueued_at, t0) : null;
        const started = s.started_at ? pct(s.started_at, now) : null;
        const finished = s.finished_at ? pct(s.finished_at, now) : started !== null ? pct(null, Math.min(now, end)) : null;
        return html`<div key=${s.id} role="row" class=${`wf-row${props.selected === s.name ? ' selected' : ''}`}>
          <button role="cell" class="link wf-name" onClick=${() => props.onSelect(s.name)}>${s.name}</button>
          <span
            role="cell"
            class="wf-track"
            aria-label=${`${s.name}: queue wait ${ms(s.started_at && s.enqueued_at ? new Date(s.started_at).getTime() - new Date(s.enqueued_at).getTime() : null)}, run ${ms(s.duration_ms)}`}
          >
            ${enq !== null && html`<span class="wf-wait-parents" style=${`left:${created}%;width:${Math.max(0, enq - created)}%`}></span>`}
            ${enq !== null && html`<span class="wf-queue" style=${`left:${enq}%;width:${Math.max(0.3, (started ?? pct(null, Math.min(now, end))) - enq)}%`}></span>`}
            ${started !== null && finished !== null && html`<span class=${`wf-run ${stateClass(s.state)}`} style=${`left:${started}%;width:${Math.max(0.5, finished - started)}%`}></span>`}
          </span>
        </div>`;
      })}
    <div class="wf-legend muted">
      <span class="wf-key wf-wait-parents"></span> waiting for parents <span class="wf-key wf-queue"></span> queue wait
      <span class="wf-key wf-run st-complete"></span> run
    </div>
  </div>`;
}

/**
 * One task: its DAG (live), the waterfall, a step's details, and the
 * actions. Every change arrives as an event and is followed by one GET of
 * the task, so the page shows what the API says, never a guess.
 */
export function TaskPage(props: { id: string }) {
  const [task, setTask] = useState<TaskView | null>(null);
  const [template, setTemplate] = useState<TemplateStep[] | undefined>(undefined);
  const [error, setError] = useState('');
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const [notice, setNotice] = useState<{ ok: boolean; text: string } | null>(null);
  const [live, setLive] = useState(false);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const load = async () => {
    try {
      const t = await api<TaskView>(`/v1/tasks/${props.id}`);
      setTask(t);
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
      const tv = await api<TemplateVersions>(`/v1/templates/${t.namespace}/${t.name}`).catch(() => undefined);
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
  const shape = graph.nodes.map((n) => n.id).join(',') + '|' + graph.edges.map((e) => `${e.from}>${e.to}`).join(',');
  const layout = useMemo(() => layoutDag(graph.nodes, graph.edges), [shape]);

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

  return html`<section class="task-page" aria-labelledby="task-title" data-task-state=${task.state}>
    <div class="page-head">
      <div>
        <h1 id="task-title">${task.namespace}/${task.name}<span class="muted">@${task.version}</span> <${StateBadge} state=${task.state} /></h1>
        <div class="mono muted">${task.id}</div>
      </div>
      <div class="actions">
        ${ACTIVE.has(task.state) && html`<button class="danger" onClick=${() => act('Cancel', () => api(`/v1/tasks/${task.id}/cancel`, { method: 'POST' }))}>Cancel task</button>`}
        ${task.state === 'error' && html`<button onClick=${() => act('Retry', () => api(`/v1/tasks/${task.id}/retry`, { method: 'POST' }))}>Retry task</button>`}
      </div>
    </div>
    <p class="notice-slot" role="status">${notice && html`<span class=${notice.ok ? 'ok' : 'form-error'}>${notice.text}</span>`}</p>
    <dl class="facts inline">
      <dt>Created</dt>
      <dd>${time(task.created_at)}</dd>
      <dt>Completed</dt>
      <dd>${time(task.completed_at)}</dd>
      <dt>Duration</dt>
      <dd>${ms(task.duration_ms)}</dd>
      <dt>Live</dt>
      <dd>${live ? 'yes' : 'connecting'}</dd>
      ${
        task.idempotency_key
          ? html`<dt>Idempotency key</dt>
              <dd class="mono">${task.idempotency_key}</dd>`
          : ''
      }
    </dl>
    ${task.error?.error && html`<div class="card task-error"><b>Failed at step ${task.error.step}</b> (${task.error.reason}) <${ErrorBlock} error=${task.error.error} /></div>`}
    <div class="task-grid">
      <div class="card">
        <h2>DAG</h2>
        <${Dag} nodes=${graph.nodes} edges=${graph.edges} layout=${layout} label=${`Steps of task ${task.id}`} selected=${selected} onSelect=${setSelected} />
      </div>
      <div class="card">
        <h2>Timeline</h2>
        <${Waterfall} task=${task} selected=${selected} onSelect=${setSelected} />
      </div>
    </div>
    ${
      step
        ? html`<${StepPanel} task=${task} step=${step} onAction=${act} />`
        : ghost
          ? html`<section class="card step-panel">
              <h2>${ghost.id}</h2>
              <p class="muted">This template step has no step in this task (${ghost.sub}).</p>
            </section>`
          : html`<p class="muted">Select a step in the DAG or the timeline to see its attempts, errors, result and timings.</p>`
    }
    <details class="card">
      <summary>Context</summary>
      <${JsonValue} value=${task.context} name=${`${task.id}-context.json`} label="Context" />
    </details>
  </section>`;
}
