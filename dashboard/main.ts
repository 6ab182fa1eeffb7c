import { html, render } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api, can, onUnauthorized, setAllowed, storeToken, storedToken, type AuthState } from './api.js';
import { currentZone, setZone, type Zone } from './format.js';
import { useTitle } from './hooks.js';
import { TaskList } from './views/tasks.js';
import { TaskPage } from './views/task.js';
import { NewTask } from './views/new-task.js';
import { TemplateList, TemplatePage } from './views/templates.js';
import { Workers } from './views/workers.js';
import { Schedules } from './views/schedules.js';
import { Stats } from './views/stats.js';
import { Bench } from './views/bench.js';

/** Routes live in the hash (#/tasks/ID), so the server serves one static page and a reload keeps the view. */
function useRoute(): { parts: string[]; query: URLSearchParams } {
  const read = () => {
    const [path, q] = location.hash.replace(/^#/, '').split('?');
    return { parts: (path || '/tasks').split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q ?? '') };
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

const NAV: Array<[string, string]> = [
  ['tasks', 'Tasks'],
  ['new', 'New task'],
  ['templates', 'Templates'],
  ['schedules', 'Schedules'],
  ['workers', 'Workers'],
  ['stats', 'Throughput'],
  ['bench', 'Benchmarks'],
];

/** The title of each section's page; a task's and a template's page name themselves. */
const TITLES: Record<string, string> = {
  tasks: 'Tasks',
  new: 'New task',
  templates: 'Templates',
  schedules: 'Schedules',
  workers: 'Workers',
  stats: 'Throughput',
  bench: 'Benchmarks',
};

function ZoneSwitch(props: { zone: Zone; onZone: (z: Zone) => void }) {
  return html`<span class="zone" role="group" aria-label="Show times in">
    ${(['local', 'utc'] as const).map(
      (z) =>
        html`<button class=${`chip${props.zone === z ? ' on' : ''}`} aria-pressed=${props.zone === z} data-zone=${z} onClick=${() => props.onZone(z)}>
          ${z === 'utc' ? 'UTC' : 'local'}
        </button>`,
    )}
  </span>`;
}

function TokenScreen(props: { reason: string; onToken: () => void }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    storeToken(value.trim());
    try {
      const auth = await api<AuthState>('/v1/auth');
      if (auth.required && !auth.token) {
        storeToken(null);
        setError('That token is unknown or revoked. `weft token list` shows the live ones.');
        return;
      }
      props.onToken();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return html`<main class="token-screen" id="main">
    <form class="card token-card" onSubmit=${submit} aria-labelledby="token-title">
      <h1 id="token-title">Token required</h1>
      <p>${props.reason}</p>
      <p>
        Create one on the orchestrator's machine with <code>weft token create --name me --scope write</code> and paste it here. It is kept in this browser until
        you sign out.
      </p>
      <label for="token-input">API token</label>
      <input
        id="token-input"
        type="password"
        autocomplete="off"
        spellcheck="false"
        value=${value}
        onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)}
        required
      />
      <p class="form-error" role="alert">${error}</p>
      <button type="submit" class="primary">Use token</button>
    </form>
  </main>`;
}

function App() {
  const route = useRoute();
  const [auth, setAuth] = useState<AuthState | null>(null);
  const [authError, setAuthError] = useState('');
  const [needToken, setNeedToken] = useState('');
  const [zone, setZoneState] = useState(currentZone());
  const [section = 'tasks', ...rest] = route.parts;
  useTitle(
    auth && !needToken && !authError && !(section === 'tasks' && rest[0]) && !(section === 'templates' && rest.length >= 2)
      ? (TITLES[section] ?? 'Not found')
      : undefined,
  );

  const check = async () => {
    try {
      const a = await api<AuthState>('/v1/auth');
      setAllowed(a);
      setAuth(a);
      setAuthError('');
      if (a.required && !a.token) setNeedToken(storedToken() ? 'The stored token is unknown or revoked.' : 'This weft API requires a bearer token.');
      else if (!a.required && !a.open_to_this_caller) setNeedToken('This weft API has no token yet and answers only its own machine.');
      else setNeedToken('');
    } catch (err) {
      setAuthError(`The weft API did not answer: ${(err as Error).message}`);
    }
  };
  useEffect(() => {
    void check();
    return onUnauthorized((e) => setNeedToken(e.message));
  }, []);

  if (authError)
    return html`<main class="token-screen" id="main">
      <div class="card">
        <h1>weft</h1>
        <p role="alert">${authError}</p>
        <button onClick=${check}>Try again</button>
      </div>
    </main>`;
  if (!auth) return html`<main class="token-screen" id="main" aria-busy="true"><p>Connecting…</p></main>`;
  if (needToken) return html`<${TokenScreen} reason=${needToken} onToken=${check} />`;

  let view;
  if (section === 'tasks' && rest[0]) view = html`<${TaskPage} key=${rest[0]} id=${rest[0]} step=${route.query.get('step') ?? undefined} />`;
  else if (section === 'tasks') view = html`<${TaskList} query=${route.query} />`;
  else if (section === 'new') view = html`<${NewTask} query=${route.query} />`;
  else if (section === 'templates' && rest.length >= 2) view = html`<${TemplatePage} key=${rest.join('/')} namespace=${rest[0]} name=${rest[1]} />`;
  else if (section === 'templates') view = html`<${TemplateList} />`;
  else if (section === 'schedules') view = html`<${Schedules} />`;
  else if (section === 'workers') view = html`<${Workers} />`;
  else if (section === 'stats') view = html`<${Stats} />`;
  else if (section === 'bench') view = html`<${Bench} />`;
  else view = html`<p>Nothing here. <a href="#/tasks">Tasks</a></p>`;

  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${(e: Event) => (e.preventDefault(), document.getElementById('main')?.focus())}>Skip to content</a>
    <header class="top">
      <a class="brand" href="#/tasks" aria-label="weft dashboard home">weft</a>
      <nav aria-label="Sections">
        ${NAV.filter(([k]) => k !== 'new' || can('write')).map(([k, label]) => html`<a href=${`#/${k}`} aria-current=${section === k ? 'page' : undefined}>${label}</a>`)}
      </nav>
      <${ZoneSwitch} zone=${zone} onZone=${(z: Zone) => (setZone(z), setZoneState(z))} />
      <span class="who"
        >${auth.token ? html`<span title=${`token ${auth.token.name}, scope ${auth.token.scopes.join(', ')}`}>${auth.token.name} <span class="muted">(${auth.token.scopes.join(', ')})</span></span> <button class="link" onClick=${() => (storeToken(null), location.reload())}>Sign out</button>` : auth.required ? '' : 'open (loopback)'}</span
      >
    </header>
    <main id="main" tabindex="-1">${view}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app')!);
