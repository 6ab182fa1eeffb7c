import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api, can } from '../api.js';
import { usePeriodic } from '../periodic.js';
import { shortId, time } from '../format.js';
import type { ScheduleView as Schedule } from '../../src/api/wire-types.js';

/** How many next firings a row shows (the API sends five). */
const SHOWN = 3;

/**
 * Schedules and their next firings (docs/schedules.md). Re-read every five
 * seconds: next firings move with time, not with events. Pause and Resume
 * are the API's own calls, shown to a token that may write.
 */
export function Schedules() {
  const { data, error } = usePeriodic<{ schedules: Schedule[] }>('/v1/schedules', 5_000);
  const [acted, setActed] = useState<Record<string, boolean>>({});
  const [actionError, setActionError] = useState('');
  const toggle = async (s: Schedule) => {
    const paused = acted[s.name] ?? s.paused;
    try {
      const after = await api<Schedule>(`/v1/schedules/${encodeURIComponent(s.name)}/${paused ? 'resume' : 'pause'}`, { method: 'POST', body: {} });
      setActed({ ...acted, [s.name]: after.paused });
      setActionError('');
    } catch (err) {
      setActionError((err as Error).message);
    }
  };
  const row = (s: Schedule) => {
    const paused = acted[s.name] ?? s.paused;
    return html`<tr key=${s.name} data-schedule=${s.name}>
      <td class="mono">${s.name}</td>
      <td><a href=${`#/templates/${s.namespace}/${s.template}`}>${s.namespace}/${s.template}</a>${s.version ? `@${s.version}` : ''}</td>
      <td class="mono">${s.cron}</td>
      <td>${s.timezone}</td>
      <td>${s.overlap} · ${s.catch_up}</td>
      <td class="next-firings">
        ${paused ? html`<span class="badge st-cancelled">paused</span>` : s.next_firings.slice(0, SHOWN).map((t) => html`<div><time datetime=${t}>${time(t)}</time></div>`)}
      </td>
      <td>${s.last_task_id ? html`<a href=${`#/tasks/${s.last_task_id}`}>${time(s.last_fire_at)} (${shortId(s.last_task_id)})</a>` : '–'}</td>
      ${can('write') && html`<td><button onClick=${() => toggle(s)}>${paused ? 'Resume' : 'Pause'}</button></td>`}
    </tr>`;
  };
  return html`<section aria-labelledby="schedules-title">
    <h1 id="schedules-title">Schedules</h1>
    ${(error || actionError) && html`<p class="form-error" role="alert">${error || actionError}</p>`}
    <p class="muted">
      Templates run on a cron expression in a time zone; create them with <code>weft schedules create</code> or <code>POST /v1/schedules</code>.
    </p>
    <div class="table-wrap">
      <table aria-label="Schedules" aria-busy=${data === null}>
        <thead>
          <tr>
            <th scope="col">name</th>
            <th scope="col">template</th>
            <th scope="col">cron</th>
            <th scope="col">time zone</th>
            <th scope="col">overlap · catch-up</th>
            <th scope="col">next firings</th>
            <th scope="col">last fired</th>
            ${can('write') && html`<th scope="col">actions</th>`}
          </tr>
        </thead>
        <tbody>
          ${data?.schedules.map(row)}
          ${
            data &&
            data.schedules.length === 0 &&
            html`<tr>
              <td colspan="8" class="empty">No schedules.</td>
            </tr>`
          }
        </tbody>
      </table>
    </div>
  </section>`;
}
