import { html } from 'htm/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, can } from '../api.js';
import { Dag } from '../dag.js';
import { When, useTitle } from '../hooks.js';
import type { TemplateSummary, TemplateVersion as Version } from '../../src/api/wire-types.js';

export function TemplateList() {
  const [list, setList] = useState<TemplateSummary[] | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    api<{ templates: TemplateSummary[] }>('/v1/templates').then(
      (r) => setList(r.templates),
      (e: Error) => setError(e.message),
    );
  }, []);
  const grouped = new Map<string, TemplateSummary[]>();
  for (const t of list ?? []) grouped.set(`${t.namespace}/${t.name}`, [...(grouped.get(`${t.namespace}/${t.name}`) ?? []), t]);
  return html`<section aria-labelledby="tpl-title">
    <h1 id="tpl-title">Templates</h1>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    <div class="table-wrap">
      <table aria-label="Registered templates" aria-busy=${list === null}>
        <thead>
          <tr>
            <th scope="col">Template</th>
            <th scope="col">Versions</th>
            <th scope="col" class="num">Steps</th>
            <th scope="col">Runtimes</th>
            <th scope="col">Description</th>
          </tr>
        </thead>
        <tbody>
          ${[...grouped].map(
            ([k, vs]) =>
              html`<tr key=${k}>
                <td><a href=${`#/templates/${k}`}>${k}</a></td>
                <td>${vs.map((v) => v.version).join(', ')}</td>
                <td class="num">${vs[vs.length - 1]!.steps}</td>
                <td>${vs[vs.length - 1]!.runtimes.join(', ')}</td>
                <td class="muted">${vs[vs.length - 1]!.description ?? ''}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </div>
  </section>`;
}

function VersionDag(props: { v: Version; label: string }) {
  const graph = useMemo(
    () => ({
      nodes: props.v.definition.steps.map((s) => ({ id: s.name, label: s.name, sub: `${s.runtime}${s.type === 'standard' ? '' : ` · ${s.type}`}` })),
      edges: props.v.definition.steps.flatMap((s) => s.depends_on.map((d) => ({ from: d, to: s.name }))),
    }),
    [props.v.digest],
  );
  return html`<${Dag} nodes=${graph.nodes} edges=${graph.edges} label=${props.label} />`;
}

export function TemplatePage(props: { namespace: string; name: string }) {
  const key = `${props.namespace}/${props.name}`;
  useTitle(`Template ${key}`);
  const [versions, setVersions] = useState<Version[] | null>(null);
  const [error, setError] = useState('');
  const [open, setOpen] = useState('');
  useEffect(() => {
    api<{ versions: Version[] }>(`/v1/templates/${key}`).then(
      (r) => {
        setVersions(r.versions);
        setOpen(r.versions[0]?.version ?? '');
      },
      (e: Error) => setError(e.message),
    );
  }, [key]);
  const v = versions?.find((x) => x.version === open);
  return html`<section aria-labelledby="tpl-title">
    <div class="page-head">
      <h1 id="tpl-title">${key}</h1>
      ${can('write') && html`<a class="button primary" href=${`#/new?template=${encodeURIComponent(key)}`}>Create a task</a>`}
    </div>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    <div class="counts" role="tablist" aria-label="Versions">
      ${versions?.map((x) => html`<button role="tab" aria-selected=${x.version === open} class=${`chip${x.version === open ? ' on' : ''}`} onClick=${() => setOpen(x.version)}>${x.version}</button>`)}
    </div>
    ${
      v &&
      html`<div class="card" role="tabpanel">
        <p>
          ${v.definition.description ?? ''}
          <span class="muted">registered <${When} at=${v.registered_at} /> · digest <span class="mono">${v.digest.slice(0, 12)}</span></span>
        </p>
        <${VersionDag} v=${v} label=${`DAG of ${key}@${v.version}`} />
        ${
          v.definition.input_schema
            ? html`<details>
                <summary>input_schema</summary>
                <pre>${JSON.stringify(v.definition.input_schema, null, 2)}</pre>
              </details>`
            : ''
        }
        <details>
          <summary>Definition</summary>
          <pre>${JSON.stringify(v.definition, null, 2)}</pre>
        </details>
      </div>`
    }
  </section>`;
}
