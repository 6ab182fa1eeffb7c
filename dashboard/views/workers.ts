import { html } from 'htm/preact';
import { usePeriodic } from '../periodic.js';
import { Chart } from '../chart.js';
import { ago, time, us } from '../format.js';

import type { HistogramSnapshot as Histogram, ProcessRow, RuntimeStats } from '../../src/api/wire-types.js';

/** A worker's bridge stats as it reports them (a worker of another version may leave fields out). */
type BridgeStats = Partial<Omit<RuntimeStats, 'histograms'>> & { histograms?: Partial<RuntimeStats['histograms']> };
/** A process of GET /v1/workers; the server types `info` loosely (each kind fills its own), this is what workers put there. */
type Proc = Omit<ProcessRow, 'info'> & {
  info: {
    namespaces?: string[];
    concurrency?: number;
    in_flight?: number;
    port?: number;
    counts?: Partial<Record<'claimed' | 'succeeded' | 'failed' | 'retried' | 'lost', number>>;
    bridge?: BridgeStats;
  };
};

const PHASES = [
  ['serialise', 'serialise'],
  ['queueWait', 'queue wait'],
  ['run', 'run'],
  ['return', 'return'],
] as const;

/** The value below which `q` of a log2-bucketed histogram's samples fall (the bucket's upper bound). */
export function quantileUs(h: Histogram | undefined, q: number): number | null {
  if (!h || !h.count) return null;
  const target = q * h.count;
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i]!;
    if (seen >= target) return h.upperBoundsUs[i] ?? null;
  }
  return h.upperBoundsUs[h.upperBoundsUs.length - 1] ?? null;
}

function BridgePanel(props: { w: Proc }) {
  const b = props.w.info.bridge!;
  const hs = b.histograms ?? {};
  const first = Object.values(hs).find(Boolean);
  const last = Math.max(0, ...Object.values(hs).map((h) => (h ? h.counts.reduce((at, c, i) => (c ? i : at), 0) : 0))) + 1;
  const bounds = (first?.upperBoundsUs ?? []).slice(0, last);
  return html`<div class="card bridge" data-bridge=${props.w.runtime}>
    <h3>${props.w.runtime} bridge on ${props.w.id}</h3>
    <dl class="facts inline">
      <dt>Breaker</dt>
      <dd><span class=${`badge br-${b.breaker?.state ?? 'unknown'}`} data-breaker=${b.breaker?.state}>${b.breaker?.state ?? '–'}</span></dd>
      <dt>Dispatched</dt>
      <dd>${b.dispatched ?? '–'}</dd>
      <dt>Completed</dt>
      <dd>${b.completed ?? '–'}</dd>
      <dt>Failed</dt>
      <dd>${b.failed ?? '–'}</dd>
      <dt>Timed out</dt>
      <dd>${b.timedOut ?? '–'}</dd>
      <dt>Rejected (breaker)</dt>
      <dd>${b.rejectedByBreaker ?? '–'}</dd>
      <dt>In flight</dt>
      <dd>${b.inFlight ?? '–'}</dd>
      ${
        b.broken
          ? html`<dt>Broken</dt>
              <dd class="st-error-text">yes: restart this worker</dd>`
          : ''
      }
    </dl>
    <table aria-label=${`${props.w.runtime} bridge latency by phase`}>
      <thead>
        <tr>
          <th scope="col">phase</th>
          <th scope="col" class="num">calls</th>
          <th scope="col" class="num">p50 ≤</th>
          <th scope="col" class="num">p99 ≤</th>
          <th scope="col" class="num">mean</th>
        </tr>
      </thead>
      <tbody>
        ${PHASES.map(([k, label]) => {
          const h = hs[k];
          return html`<tr>
            <td>${label}</td>
            <td class="num">${h?.count ?? 0}</td>
            <td class="num">${us(quantileUs(h, 0.5))}</td>
            <td class="num">${us(quantileUs(h, 0.99))}</td>
            <td class="num">${us(h && h.count ? h.sumNs / h.count / 1000 : null)}</td>
          </tr>`;
        })}
      </tbody>
    </table>
    ${
      bounds.length > 0 &&
      html`<${Chart}
        title=${`${props.w.runtime}: calls per latency bucket, by phase`}
        steps
        x=${bounds.map((_, i) => i)}
        xLabels=${bounds.map((b) => `≤${us(b)}`)}
        series=${PHASES.map(([k, label]) => ({ label, values: (hs[k]?.counts ?? []).slice(0, last) }))}
        height=${180}
      />`
    }
  </div>`;
}

/**
 * Registered processes and their heartbeats. Heartbeat age is a matter of
 * time passing, not of events, so this view re-reads every two seconds.
 */
export function Workers() {
  const { data, error } = usePeriodic<{ stale_after_ms: number; workers: Proc[]; orchestrators: Proc[] }>('/v1/workers', 2_000);
  const row = (w: Proc) =>
    html`<tr key=${w.id} data-worker=${w.id} data-pid=${w.pid} data-stale=${String(w.stale)} class=${w.stale ? 'stale' : ''}>
      <td class="mono">${w.id}</td>
      <td>${w.runtime ?? '–'}</td>
      <td>${w.host}</td>
      <td class="num">${w.pid}</td>
      <td>${time(w.started_at)}</td>
      <td>${w.stale ? html`<span class="badge st-error">stopped heartbeating</span> ` : ''}${ago(w.heartbeat_age_ms)}</td>
      <td class="num">${w.info.in_flight ?? '–'}${w.info.concurrency ? ` / ${w.info.concurrency}` : ''}</td>
      <td class="num">
        ${w.info.counts ? `${w.info.counts.succeeded ?? 0} ok · ${w.info.counts.failed ?? 0} failed · ${w.info.counts.retried ?? 0} retried · ${w.info.counts.lost ?? 0} lost` : '–'}
      </td>
      <td>${w.info.bridge?.breaker ? html`<span class=${`badge br-${w.info.bridge.breaker.state}`}>${w.info.bridge.breaker.state}</span>` : '–'}</td>
      <td>${(w.info.namespaces ?? []).join(', ')}</td>
    </tr>`;
  const head = html`<thead>
    <tr>
      <th scope="col">id</th>
      <th scope="col">runtime</th>
      <th scope="col">host</th>
      <th scope="col" class="num">pid</th>
      <th scope="col">started</th>
      <th scope="col">last heartbeat</th>
      <th scope="col" class="num">in flight</th>
      <th scope="col" class="num">steps</th>
      <th scope="col">breaker</th>
      <th scope="col">namespaces</th>
    </tr>
  </thead>`;
  return html`<section aria-labelledby="workers-title">
    <h1 id="workers-title">Workers and runtimes</h1>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    <p class="muted">
      A process that has not heartbeated for ${data ? data.stale_after_ms / 1000 : '–'} s is shown as stopped heartbeating; a worker that stops cleanly removes
      itself.
    </p>
    <div class="table-wrap">
      <table aria-label="Workers" aria-busy=${data === null}>
        ${head}
        <tbody>
          ${data?.workers.map(row)}
          ${
            data &&
            data.workers.length === 0 &&
            html`<tr>
              <td colspan="10" class="empty">No worker has registered.</td>
            </tr>`
          }
        </tbody>
      </table>
    </div>
    ${
      data &&
      data.orchestrators.length > 0 &&
      html`<h2>Orchestrators</h2>
        <div class="table-wrap">
          <table aria-label="Orchestrators">
            ${head}
            <tbody>
              ${data.orchestrators.map(row)}
            </tbody>
          </table>
        </div>`
    }
    <h2>Bridges</h2>
    ${data?.workers.some((w) => w.info.bridge) ? html`<div class="bridges">${data.workers.filter((w) => w.info.bridge && !w.stale).map((w) => html`<${BridgePanel} key=${w.id} w=${w} />`)}</div>` : html`<p class="muted">No Python, Ruby or TypeScript-through-the-bridge worker reports bridge counters.</p>`}
  </section>`;
}
