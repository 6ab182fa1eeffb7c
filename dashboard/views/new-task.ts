import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import { useTitle } from '../hooks.js';
import type { InputProblem, TemplateSummary, TemplateVersion as Version } from '../../src/api/wire-types.js';

function describe(err: unknown): string {
  return err instanceof ApiError ? `${err.status} ${err.code}${err.path ? ` (${err.path})` : ''}: ${err.message}` : (err as Error).message;
}

/** A starting context: the schema's first example, else its defaults, else `{}`. */
function exampleContext(schema: Record<string, unknown> | undefined): string {
  if (!schema) return '{}';
  const examples = schema.examples as unknown[] | undefined;
  if (Array.isArray(examples) && examples.length) return JSON.stringify(examples[0], null, 2);
  const props = (schema.properties ?? {}) as Record<string, { default?: unknown }>;
  const withDefaults = Object.fromEntries(
    Object.entries(props)
      .filter(([, p]) => p && 'default' in p)
      .map(([k, p]) => [k, p.default]),
  );
  return JSON.stringify(withDefaults, null, 2);
}

/**
 * Create a task from a template. The browser checks that the context is
 * JSON; the server checks it against the template's input_schema (POST
 * /v1/tasks/check, on leaving the editor and before creating), so every
 * problem is listed with its path, in the server's words, before anything
 * is created; the request is then the public POST /v1/tasks, and its errors
 * are shown as they come. (The browser compiles no schema: a validator that
 * generates code would need `unsafe-eval`, which the dashboard's
 * Content-Security-Policy forbids, and a template's patterns then run only
 * under the server's limits.)
 */
export function NewTask(props: { query: URLSearchParams }) {
  useTitle('New task');
  const [templates, setTemplates] = useState<TemplateSummary[]>([]);
  const [key, setKey] = useState(props.query.get('template') ?? '');
  const [versions, setVersions] = useState<Version[]>([]);
  const [version, setVersion] = useState('');
  const [text, setText] = useState('{}');
  const [problems, setProblems] = useState<InputProblem[]>([]);
  const [sending, setSending] = useState(false);
  const [serverError, setServerError] = useState('');

  useEffect(() => {
    void api<{ templates: TemplateSummary[] }>('/v1/templates').then((r) => {
      const unique = [...new Map(r.templates.map((t) => [`${t.namespace}/${t.name}`, t])).values()];
      setTemplates(unique);
      if (!key && unique[0]) setKey(`${unique[0].namespace}/${unique[0].name}`);
    });
  }, []);

  useEffect(() => {
    if (!key) return;
    setVersions([]);
    void api<{ versions: Version[] }>(`/v1/templates/${key}`).then((r) => {
      setVersions(r.versions);
      setVersion(r.versions[0]?.version ?? '');
      setText(exampleContext(r.versions[0]?.definition.input_schema));
      setProblems([]);
      setServerError('');
    });
  }, [key]);

  const def = versions.find((v) => v.version === version)?.definition;

  const [namespace, name] = key.split('/');
  const validate = async (): Promise<{ ok: true; context: unknown } | { ok: false }> => {
    let context: unknown;
    try {
      context = JSON.parse(text);
    } catch (err) {
      setProblems([{ path: 'context', message: `context is not JSON: ${(err as Error).message}` }]);
      return { ok: false };
    }
    if (!version) return { ok: false };
    try {
      const r = await api<{ ok: boolean; problems?: InputProblem[] }>('/v1/tasks/check', { method: 'POST', body: { namespace, name, version, context } });
      setProblems(r.problems ?? []);
      return r.ok ? { ok: true, context } : { ok: false };
    } catch (err) {
      setServerError(describe(err));
      return { ok: false };
    }
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    setServerError('');
    setSending(true);
    try {
      const v = await validate();
      if (!v.ok) return;
      const created = await api<{ id: string }>('/v1/tasks', { method: 'POST', body: { namespace, name, version, context: v.context } });
      location.hash = `#/tasks/${created.id}`;
    } catch (err) {
      setServerError(describe(err));
    } finally {
      setSending(false);
    }
  };

  return html`<section aria-labelledby="new-title">
    <h1 id="new-title">New task</h1>
    <form class="card new-task" onSubmit=${submit} novalidate>
      <div class="row">
        <label
          >Template
          <select name="template" value=${key} onChange=${(e: Event) => setKey((e.target as HTMLSelectElement).value)}>
            ${templates.map((t) => html`<option value=${`${t.namespace}/${t.name}`}>${t.namespace}/${t.name}</option>`)}
          </select>
        </label>
        <label
          >Version
          <select name="version" value=${version} onChange=${(e: Event) => setVersion((e.target as HTMLSelectElement).value)}>
            ${versions.map((v) => html`<option value=${v.version}>${v.version}</option>`)}
          </select>
        </label>
      </div>
      ${def?.description && html`<p class="muted">${def.description}</p>`}
      <label for="context-editor">Context (JSON)</label>
      <textarea
        id="context-editor"
        name="context"
        rows="10"
        spellcheck="false"
        aria-invalid=${problems.length > 0}
        aria-describedby="context-problems"
        value=${text}
        onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}
        onBlur=${() => void validate()}
      ></textarea>
      <ul id="context-problems" class="problems" role="alert">
        ${problems.map((p) => html`<li data-path=${p.path}><code>${p.path}</code>: ${p.message}</li>`)}
      </ul>
      ${
        def?.input_schema &&
        html`<details>
          <summary>input_schema</summary>
          <pre>${JSON.stringify(def.input_schema, null, 2)}</pre>
        </details>`
      }
      <p class="form-error" role="alert">${serverError}</p>
      <button type="submit" class="primary" disabled=${sending || !version}>${sending ? 'Creating…' : 'Create task'}</button>
    </form>
  </section>`;
}
