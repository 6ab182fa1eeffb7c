import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, can, followEvents } from '../api.js';
import { ms, shortId, stateClass } from '../format.js';
import { When } from '../hooks.js';
import type { TaskFailure, TaskSummary } from '../../src/api/wire-types.js';

interface Page {
  tasks: TaskSummary[];
  next_cursor: string | null;
  counts: Record<string, number>;
}

const STATES = ['pending', 'running', 'complete', 'error', 'cancelled'];
const FILTERS = ['state', 'namespace', 'name', 'created_after', 'created_before', 'q'] as const;

/** datetime-local ("2026-01-31T12:00") ⇄ ISO instant, in the browser's time zone. */
const toIso = (local: string) => (local ? new Date(local).toISOString() : '');
const toLocal = (iso: string | null) => {
  if (!iso) return '';
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

export function StateBadge(props: { state: string }) {
  return html`<span class=${`badge ${stateClass(props.state)}`} data-state=${props.state}>${props.state}</span>`;
}

/** While rows of the page run, it is read again this often: their step counts move without events. */
const RUNNING_REFRESH_MS = 3_000;

/** One line saying where and why a task stopped: `explode: LookupError: sku A-42 …`, `cancelled by token:ops: wrong input`. */
function failureLine(e: TaskFailure): string {
  if (e.reason === 'cancelled') return `cancelled${e.by ? ` by ${e.by}` : ''}${e.message ? `: ${e.message}` : ''}`;
  const what = [e.class, e.message].filter(Boolean).join(': ');
  return `${e.step ? `at ${e.step}: ` : ''}${what || e.reason || 'failed'}${what && e.reason ? ` (${e.reason})` : ''}`;
}

/**
 * The task list: filters in the URL (so a view can be shared), keyset pages,
 * counts by state, and live rows: /v1/events tells every task's start
 * (created, retried) and end, and a page with running rows is read again
 * every few seconds for their progress.
 */
export function TaskList(props: { query: URLSearchParams }) {
  const filters = Object.fromEntries(FILTERS.map((k) => [k, props.query.get(k) ?? ''])) as Record<(typeof FILTERS)[number], string>;
  const cursor = props.query.get('cursor') ?? '';
  const [page, setPage] = useState<Page | null>(null);
  const [error, setError] = useState('');
  const [draft, setDraft] = useState(filters);
  const pageRef = useRef<Page | null>(null);
  pageRef.current = page;
  const key = props.query.toString();

  const load = async () => {
    const q = new URLSearchParams();
    for (const k of FILTERS) if (filters[k]) q.set(k, filters[k]);
    if (cursor) q.set('cursor', cursor);
    q.set('limit', '25');
    try {
      setPage(await api<Page>(`/v1/tasks?${q}`));
      setError('');
    } catch (err) {
      setError((err as Error).message);
    }
  };

  useEffect(() => {
    setDraft(filters);
    void load();
    const ctl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    // A task's start or end updates its row at once and refreshes the page
    // (new rows, durations, counts) shortly after; a burst costs one request.
    followEvents(
      '/v1/events',
      ctl.signal,
      (event, data: { task_id: string; state: TaskSummary['state'] }) => {
        if (event !== 'task' && event !== 'task_started') return;
        const p = pageRef.current;
        if (p?.tasks.some((t) => t.id === data.task_id)) {
          setPage({ ...p, tasks: p.tasks.map((t) => (t.id === data.task_id ? { ...t, state: data.state } : t)) });
        }
        clearTimeout(timer);
        timer = setTimeout(() => void load(), 300);
      },
      () => void load(),
    );
    return () => {
      ctl.abort();
      clearTimeout(timer);
    };
  }, [key]);

  const running = page?.tasks.some((t) => t.state === 'running' || t.state === 'pending') ?? false;
  useEffect(() => {
    if (!running) return;
    const every = setInterval(() => void load(), RUNNING_REFRESH_MS);
    return () => clearInterval(every);
  }, [running, key]);

  const go = (next: Record<string, string>) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(next)) if (v) q.set(k, v);
    location.hash = `#/tasks${q.size ? `?${q}` : ''}`;
  };
  const submit = (e: Event) => {
    e.preventDefault();
    go(draft);
  };
  const field = (k: (typeof FILTERS)[number]) => (e: Event) => setDraft({ ...draft, [k]: (e.target as HTMLInputElement).value });

  return html`<section aria-labelledby="tasks-title">
    <div class="page-head">
      <h1 id="tasks-title">Tasks</h1>
      ${can('write') && html`<a class="button primary" href="#/new">New task</a>`}
    </div>
    <div class="counts" role="group" aria-label="Tasks by state">
      <button class=${`chip${filters.state ? '' : ' on'}`} aria-pressed=${!filters.state} onClick=${() => go({ ...filters, state: '' })}>
        all <b>${page ? Object.values(page.counts).reduce((a, b) => a + b, 0) : '–'}</b>
      </button>
      ${STATES.map(
        (s) =>
          html`<button
            class=${`chip ${stateClass(s)}${filters.state === s ? ' on' : ''}`}
            aria-pressed=${filters.state === s}
            data-count=${s}
            onClick=${() => go({ ...filters, state: filters.state === s ? '' : s })}
          >
            ${s} <b>${page?.counts[s] ?? '–'}</b>
          </button>`,
      )}
    </div>
    <form class="filters card" onSubmit=${submit} aria-label="Filter tasks">
      <label>Search id<input name="q" placeholder="id or idempotency key" value=${draft.q} onInput=${field('q')} /></label>
      <label>Namespace<input name="namespace" value=${draft.namespace} onInput=${field('namespace')} /></label>
      <label>Name<input name="name" value=${draft.name} onInput=${field('name')} /></label>
      <label
        >State<select name="state" value=${draft.state} onChange=${field('state')}>
          <option value="">any</option>
          ${STATES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select></label
      >
      <label
        >Created after<input
          type="datetime-local"
          value=${toLocal(draft.created_after)}
          onInput=${(e: Event) => setDraft({ ...draft, created_after: toIso((e.target as HTMLInputElement).value) })}
      /></label>
      <label
        >Created before<input
          type="datetime-local"
          value=${toLocal(draft.created_before)}
          onInput=${(e: Event) => setDraft({ ...draft, created_before: toIso((e.target as HTMLInputElement).value) })}
      /></label>
      <div class="filter-actions"><button type="submit" class="primary">Apply</button><button type="button" onClick=${() => go({})}>Clear</button></div>
    </form>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    <div class="table-wrap">
      <table class="tasks" aria-label="Tasks, newest first" aria-busy=${page === null}>
        <thead>
          <tr>
            <th scope="col">Task</th>
            <th scope="col">Template</th>
            <th scope="col">State</th>
            <th scope="col">Steps</th>
            <th scope="col">Created</th>
            <th scope="col" class="num">Duration</th>
          </tr>
        </thead>
        <tbody>
          ${page?.tasks.map(
            (t) =>
              html`<tr key=${t.id} data-task=${t.id}>
                <td><a class="mono" href=${`#/tasks/${t.id}`} title=${t.id}>${shortId(t.id)}</a></td>
                <td class="tpl-cell">
                  ${t.namespace}/${t.name}<span class="muted">@${t.version}</span>
                  ${t.error && html`<div class="row-error" data-error title=${failureLine(t.error)}>${failureLine(t.error)}</div>`}
                </td>
                <td><${StateBadge} state=${t.state} /></td>
                <td class="num">
                  <span class="progress" aria-label=${`${t.steps_complete} of ${t.steps} steps complete`}
                    ><span style=${`width:${t.steps ? (100 * t.steps_complete) / t.steps : 0}%`}></span
                  ></span>
                  ${t.steps_complete}/${t.steps}${t.steps_failed ? html` <span class="st-error-text">${t.steps_failed} failed</span>` : ''}
                </td>
                <td><${When} at=${t.created_at} /></td>
                <td class="num">${ms(t.duration_ms)}</td>
              </tr>`,
          )}
          ${
            page &&
            page.tasks.length === 0 &&
            html`<tr>
              <td colspan="6" class="empty">No task matches.${can('write') ? html` <a href="#/new">Create one</a>.` : ''}</td>
            </tr>`
          }
        </tbody>
      </table>
    </div>
    <nav class="pager" aria-label="Pages">
      <button disabled=${!cursor} onClick=${() => go({ ...filters })}>Newest</button>
      <button disabled=${!page?.next_cursor} onClick=${() => go({ ...filters, cursor: page!.next_cursor! })}>Older →</button>
    </nav>
  </section>`;
}
