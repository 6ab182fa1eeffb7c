import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Chart } from '../chart.js';
import { ms, time, us } from '../format.js';

interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
}
interface BenchDoc {
  generated_at: string;
  backend: string;
  quick: boolean;
  results_dir: string;
  git: { commit: string | null };
  machine: { cpu_model: string; cores: number };
  scenarios: Array<{ id: string; label: string; runtime: string; tier: number; steps: number; runs: Array<{ run: number; client: Summary; server: Summary }> }>;
  throughput: Array<{ topology: string; run: number; steps_per_s: number; tasks_per_s: number; latency: Summary }>;
}
interface BridgeRun {
  file: string;
  machine: { date: string };
  cells: Array<{ target: string; payload: string; mode: string; p50us: number; p99us: number; callsPerSec: number }>;
}

/** The latest `weft bench` report per backend and the latest bridge run, so the FFI cost per language is one click away. */
export function Bench() {
  const [data, setData] = useState<{ runs: Record<string, BenchDoc>; bridge: BridgeRun | null } | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    api<{ runs: Record<string, BenchDoc>; bridge: BridgeRun | null }>('/v1/bench').then(setData, (e: Error) => setError(e.message));
  }, []);
  const seq = data?.bridge?.cells.filter((c) => c.mode === 'sequential') ?? [];
  const payloads = [...new Set(seq.map((c) => c.payload))];
  const targets = [...new Set(seq.map((c) => c.target))];
  return html`<section aria-labelledby="bench-title">
    <h1 id="bench-title">Benchmarks</h1>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    ${data && !Object.keys(data.runs).length && !data.bridge && html`<p>No results yet: run <code>npx weft bench --quick</code> or <code>npm run bench:bridge</code>.</p>`}
    ${
      data?.bridge &&
      html`<div class="card">
        <h2>Bridge: cost of one call per language</h2>
        <p class="muted">
          ${data.bridge.file}, ${time(data.bridge.machine.date)}. Sequential calls through the addon: what a step pays to cross into Python, Ruby or TypeScript,
          beside a native (in-process JavaScript) call.
        </p>
        <${Chart}
          title="p50 per call (µs), sequential"
          bars
          x=${targets.map((_, i) => i)}
          xLabels=${targets}
          series=${[...payloads].reverse().map((p) => ({ label: p, values: targets.map((t) => seq.find((c) => c.target === t && c.payload === p)?.p50us ?? null) }))}
          unit="µs"
          height=${200}
        />
        <table aria-label="Bridge per-call latency">
          <thead>
            <tr>
              <th scope="col">target</th>
              <th scope="col">payload</th>
              <th scope="col" class="num">p50</th>
              <th scope="col" class="num">p99</th>
              <th scope="col" class="num">calls/s</th>
            </tr>
          </thead>
          <tbody>
            ${seq.map(
              (c) =>
                html`<tr>
                  <td>${c.target}</td>
                  <td>${c.payload}</td>
                  <td class="num">${us(c.p50us)}</td>
                  <td class="num">${us(c.p99us)}</td>
                  <td class="num">${Math.round(c.callsPerSec).toLocaleString()}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </div>`
    }
    ${Object.values(data?.runs ?? {}).map((d) => {
      const rows = d.scenarios.map((s) => ({ s, last: s.runs[s.runs.length - 1]! }));
      return html`<div class="card" key=${d.backend}>
        <h2>Workflows on ${d.backend}${d.quick ? ' (quick)' : ''}</h2>
        <p class="muted">
          ${d.results_dir} · ${time(d.generated_at)} · ${d.machine.cores} × ${d.machine.cpu_model} · commit
          <span class="mono">${d.git.commit?.slice(0, 7) ?? '?'}</span>
        </p>
        <${Chart}
          title="Client latency p50 / p95 per scenario (last run)"
          bars
          x=${rows.map((_, i) => i)}
          xLabels=${rows.map((r) => r.s.id)}
          series=${[
            { label: 'p95', values: rows.map((r) => r.last.client.p95) },
            { label: 'p50', values: rows.map((r) => r.last.client.p50) },
          ]}
          unit="ms"
          height=${220}
        />
        <table aria-label=${`Scenarios on ${d.backend}`}>
          <thead>
            <tr>
              <th scope="col">scenario</th>
              <th scope="col">runtime</th>
              <th scope="col" class="num">steps</th>
              <th scope="col" class="num">p50</th>
              <th scope="col" class="num">p95</th>
              <th scope="col" class="num">p99</th>
            </tr>
          </thead>
          <tbody>
            ${rows.map(
              ({ s, last }) =>
                html`<tr>
                  <td>${s.label}</td>
                  <td>${s.runtime}</td>
                  <td class="num">${s.steps}</td>
                  <td class="num">${ms(last.client.p50)}</td>
                  <td class="num">${ms(last.client.p95)}</td>
                  <td class="num">${ms(last.client.p99)}</td>
                </tr>`,
            )}
          </tbody>
        </table>
        ${
          d.throughput.length > 0 &&
          html`<h3>Throughput</h3>
            <table aria-label=${`Throughput on ${d.backend}`}>
              <thead>
                <tr>
                  <th scope="col">topology</th>
                  <th scope="col" class="num">run</th>
                  <th scope="col" class="num">steps/s</th>
                  <th scope="col" class="num">tasks/s</th>
                  <th scope="col" class="num">p50</th>
                  <th scope="col" class="num">p99</th>
                </tr>
              </thead>
              <tbody>
                ${d.throughput.map(
                  (t) =>
                    html`<tr>
                      <td>${t.topology}</td>
                      <td class="num">${t.run}</td>
                      <td class="num">${t.steps_per_s.toFixed(0)}</td>
                      <td class="num">${t.tasks_per_s.toFixed(1)}</td>
                      <td class="num">${ms(t.latency.p50)}</td>
                      <td class="num">${ms(t.latency.p99)}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
        }
      </div>`;
    })}
  </section>`;
}
