import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import { bothZones, clockTime, ms } from '../format.js';
import { StateBadge } from './tasks.js';
import type { TaskHistory, Transition } from '../../src/api/wire-types.js';

export type { Transition } from '../../src/api/wire-types.js';

/**
 * GET /v1/tasks/:id/history (one step's with `step`) while `enabled`, again
 * whenever `version` changes (the task page bumps it after each re-read of
 * the task): never two requests at once, and the last change always read.
 */
export function useHistory(taskId: string, opts: { step?: string; enabled: boolean; version: number }): { data: TaskHistory | null; error: string } {
  const [data, setData] = useState<TaskHistory | null>(null);
  const [error, setError] = useState('');
  const busy = useRef(false);
  const again = useRef(false);
  const path = `/v1/tasks/${taskId}/history${opts.step ? `?step=${encodeURIComponent(opts.step)}` : ''}`;
  const pathRef = useRef(path);
  pathRef.current = path;
  useEffect(() => setData(null), [path]);
  useEffect(() => {
    if (!opts.enabled) return;
    const read = async () => {
      if (busy.current) {
        again.current = true;
        return;
      }
      busy.current = true;
      const asked = pathRef.current;
      try {
        const h = await api<TaskHistory>(asked);
        if (asked === pathRef.current) setData(h);
        setError('');
      } catch (err) {
        setError((err as Error).message);
      } finally {
        busy.current = false;
      }
      if (again.current) {
        again.current = false;
        void read();
      }
    };
    void read();
  }, [path, opts.enabled, opts.version]);
  return { data, error };
}

const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** Who made a change: the person's token for a cancel or retry, else the weft process that wrote it. */
function who(t: Transition): string {
  return str(t.metadata?.by) ?? t.process;
}

/** What a transition means, in words, from what its statement recorded (see the metadata written in migrations/). */
function describeTransition(t: Transition): string {
  const m = t.metadata ?? {};
  const reason = str(m.reason);
  const attempt = num(m.attempt);
  const delay = num(m.delay_ms);
  const from = t.from;
  if (t.step === null) {
    if (from === null) return 'created';
    if (t.to === 'running' && (from === 'error' || from === 'cancelled')) return `retried${str(m.step) ? ` from step ${str(m.step)}` : ''}`;
    if (t.to === 'running') return 'started';
    if (t.to === 'complete') return 'every step complete';
    if (t.to === 'error') return `step ${str(m.step) ?? '?'} failed${reason ? `: ${reason}` : ''}`;
    if (t.to === 'cancelled') return `cancelled${reason ? `: ${reason}` : ''}`;
    return reason ?? '';
  }
  if (from === null) return 'created';
  if ((from === 'error' || from === 'cancelled') && (t.to === 'enqueued' || t.to === 'pending')) return 'retried: runs again with a fresh retry budget';
  if (t.to === 'running') {
    const how = m.claimed ? ' (claimed by the worker that finished its parent)' : reason ? ` (${reason})` : '';
    return `attempt ${attempt ?? '?'} started on ${t.process}${how}`;
  }
  if (from === 'running') {
    if (reason === 'worker lost') {
      return t.to === 'error'
        ? `its worker ${str(m.worker) ?? '?'} was lost ${num(m.losses) ?? '?'} times: failed`
        : `its worker ${str(m.worker) ?? '?'} was lost (loss ${num(m.losses) ?? '?'}); queued again, no attempt used`;
    }
    if (t.to === 'complete' || t.to === 'succeeded')
      return `attempt ${attempt ?? '?'} succeeded${num(m.duration_ms) !== undefined ? ` in ${ms(num(m.duration_ms))}` : ''}`;
    if (t.to === 'waiting_retry' && reason) return `given back: ${reason}; runs again in ${ms(delay)}, no attempt used`;
    if (t.to === 'waiting_retry') return `attempt ${attempt ?? '?'} failed; retry in ${ms(delay)}`;
    if (t.to === 'enqueued') return `given back${reason ? `: ${reason}` : ''}; queued again, no attempt used`;
    if (t.to === 'error') return `attempt ${attempt ?? '?'} failed for good${reason ? `: ${reason}` : ''}`;
  }
  if (from === 'waiting_retry' && t.to === 'enqueued')
    return reason === 'backoff elapsed' ? `backoff over: queued for attempt ${num(m.next_attempt) ?? '?'}` : (reason ?? 'queued');
  if (from === 'pending' && t.to === 'enqueued') return 'ready: queued';
  if (t.to === 'cancelled') return reason ?? 'cancelled';
  return reason ?? '';
}

/** Changes a person looks for first: anything done by someone, failed, retried, lost or given back (not the routine queue → run → done). */
function notable(t: Transition): boolean {
  if (t.step === null) return true;
  const m = t.metadata ?? {};
  return m.by !== undefined || (m.reason !== undefined && !m.claimed) || ['waiting_retry', 'error', 'cancelled', 'failed'].includes(t.to);
}

/** Transitions as a table: when (to the millisecond; both zones on hover), what, who, and why. */
export function HistoryTable(props: { transitions: Transition[]; label: string; showStep: boolean }) {
  return html`<div class="table-wrap history">
    <table aria-label=${props.label}>
      <thead>
        <tr>
          <th scope="col">time</th>
          ${props.showStep && html`<th scope="col">step</th>`}
          <th scope="col">change</th>
          <th scope="col">who</th>
          <th scope="col">what happened</th>
        </tr>
      </thead>
      <tbody>
        ${props.transitions.map(
          (t) =>
            html`<tr key=${`${t.step ?? ''}#${t.seq}`} data-transition=${`${t.from ?? 'new'}>${t.to}`} data-step-name=${t.step ?? ''}>
              <td class="mono" title=${bothZones(t.at)}><time datetime=${t.at}>${clockTime(t.at)}</time></td>
              ${props.showStep && html`<td>${t.step ?? html`<span class="muted">task</span>`}</td>`}
              <td>${t.from ? html`<${StateBadge} state=${t.from} /> → ` : ''}<${StateBadge} state=${t.to} /></td>
              <td class="mono" data-who>${who(t)}</td>
              <td class="why" title=${t.metadata ? JSON.stringify(t.metadata) : ''}>${describeTransition(t)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

/**
 * The task's audit trail, read when opened: the task's own changes and its
 * steps' notable ones (who cancelled or retried, failures with their retry
 * delays, lost workers), every step change on request.
 */
export function TaskHistoryPanel(props: { taskId: string; version: number }) {
  const [open, setOpen] = useState(false);
  const [everything, setEverything] = useState(false);
  const { data, error } = useHistory(props.taskId, { enabled: open, version: props.version });
  const shown = data ? (everything ? data.transitions : data.transitions.filter(notable)) : [];
  return html`<details class="card" data-history="task" onToggle=${(e: Event) => setOpen((e.currentTarget as HTMLDetailsElement).open)}>
    <summary>History: who did what, and why</summary>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    ${
      data &&
      html`<p class="muted">
          ${shown.length} of ${data.transitions.length} changes${data.truncated ? ' (the earliest; the task has more)' : ''}.
          <label class="inline"
            ><input type="checkbox" checked=${everything} onChange=${(e: Event) => setEverything((e.target as HTMLInputElement).checked)} /> every step
            change</label
          >
        </p>
        <${HistoryTable} transitions=${shown} label="Task history" showStep=${true} />`
    }
    ${open && !data && !error && html`<p class="muted">Loading…</p>`}
  </details>`;
}
