import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { usePeriodic } from '../periodic.js';
import type { Activity, PoolStats } from '../../src/api/wire-types.js';
import { Chart } from '../chart.js';
import { ms } from '../format.js';

/** GET /v1/stats: the store's Activity (JSON has no Dates in it) plus queue depth and the pool. */
type Stats = Activity & { queue_depth: Record<string, number>; pool: PoolStats };

const WINDOWS: Array<[number, string]> = [
  [300, '5 min'],
  [900, '15 min'],
  [3600, '1 h'],
];

/** Throughput and latency over a window; re-read every five seconds while open. */
export function Stats() {
  const [windowS, setWindowS] = useState(900);
  const { data: s, error } = usePeriodic<Stats>(`/v1/stats?window_s=${windowS}`, 5_000);
  const series = s
    ? Object.entries(s.steps_per_s)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([label, values]) => ({ label, values }))
    : [];
  return html`<section aria-labelledby="stats-title">
    <div class="page-head">
      <h1 id="stats-title">Throughput and latency</h1>
      <label
        >Window
        <select value=${windowS} onChange=${(e: Event) => setWindowS(Number((e.target as HTMLSelectElement).value))}>
          ${WINDOWS.map(([v, l]) => html`<option value=${v}>${l}</option>`)}
        </select></label
      >
    </div>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    <div class="grid2">
      <${Chart}
        title=${`Steps finished per second, by namespace/runtime (${s?.bucket_s ?? '–'} s buckets)`}
        x=${s?.buckets ?? []}
        series=${series.length ? series : [{ label: 'no steps', values: (s?.buckets ?? []).map(() => 0) }]}
        unit="/s"
      />
      <${Chart}
        title="Task latency, created → completed"
        x=${s?.buckets ?? []}
        series=${[
          { label: 'p50', values: s?.task_latency_series.p50 ?? [] },
          { label: 'p99', values: s?.task_latency_series.p99 ?? [] },
        ]}
        unit="ms"
      />
    </div>
    <div class="grid2">
      <div class="card">
        <h2>Task latency by namespace</h2>
        <table aria-label="Task latency percentiles by namespace">
          <thead>
            <tr>
              <th scope="col">namespace</th>
              <th scope="col" class="num">tasks</th>
              <th scope="col" class="num">p50</th>
              <th scope="col" class="num">p90</th>
              <th scope="col" class="num">p99</th>
              <th scope="col" class="num">max</th>
            </tr>
          </thead>
          <tbody>
            ${Object.entries(s?.task_latency ?? {})
              .sort(([a], [b]) => (a === '*' ? 1 : b === '*' ? -1 : a.localeCompare(b)))
              .map(
                ([ns, l]) =>
                  html`<tr>
                    <td>${ns === '*' ? html`<b>all</b>` : ns}</td>
                    <td class="num">${l.n}</td>
                    <td class="num">${ms(l.p50)}</td>
                    <td class="num">${ms(l.p90)}</td>
                    <td class="num">${ms(l.p99)}</td>
                    <td class="num">${ms(l.max)}</td>
                  </tr>`,
              )}
          </tbody>
        </table>
      </div>
      <div class="card">
        <h2>Step time by runtime</h2>
        <table aria-label="Queue wait and run time by runtime">
          <thead>
            <tr>
              <th scope="col">runtime</th>
              <th scope="col" class="num">steps</th>
              <th scope="col" class="num">queue p50</th>
              <th scope="col" class="num">queue p99</th>
              <th scope="col" class="num">run p50</th>
              <th scope="col" class="num">run p99</th>
            </tr>
          </thead>
          <tbody>
            ${Object.entries(s?.step_phases ?? {}).map(
              ([rt, p]) =>
                html`<tr>
                  <td>${rt}</td>
                  <td class="num">${p.n}</td>
                  <td class="num">${ms(p.queue_p50)}</td>
                  <td class="num">${ms(p.queue_p99)}</td>
                  <td class="num">${ms(p.run_p50)}</td>
                  <td class="num">${ms(p.run_p99)}</td>
                </tr>`,
            )}
          </tbody>
        </table>
        <p class="muted">
          Run includes the bridge's dispatch for Python, Ruby and TypeScript; the Workers page splits it into serialise, queue wait, run and return.
        </p>
      </div>
    </div>
    <div class="grid2">
      <div class="card">
        <h2>Queue depth</h2>
        <table aria-label="Messages waiting per queue">
          <tbody>
            ${Object.entries(s?.queue_depth ?? {}).map(
              ([q, n]) =>
                html`<tr>
                  <td class="mono">${q}</td>
                  <td class="num">${n}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </div>
      <div class="card">
        <h2>Database pool (this orchestrator)</h2>
        <dl class="facts inline">
          <dt>In use</dt>
          <dd>${s?.pool.inUse ?? '–'} / ${s?.pool.total ?? '–'}</dd>
          <dt>Waiting</dt>
          <dd>${s?.pool.waiting ?? '–'}</dd>
          <dt>Slow acquires</dt>
          <dd>${s?.pool.slowAcquires ?? '–'}</dd>
          <dt>Mean acquire</dt>
          <dd>${s && s.pool.acquires ? ms(s.pool.acquireMsTotal / s.pool.acquires) : '–'}</dd>
          <dt>Max acquire</dt>
          <dd>${ms(s?.pool.maxAcquireMs)}</dd>
        </dl>
      </div>
    </div>
  </section>`;
}
