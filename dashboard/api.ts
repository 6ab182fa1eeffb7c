/**
 * The dashboard's only way to the server: the public REST API, with the
 * bearer token when one is set, and server-sent events read through fetch
 * (EventSource cannot send an Authorization header).
 */

const TOKEN_KEY = 'weft.token';

export function storedToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}
export function storeToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** An error the API answered with: `{ error: { code, message, path? } }`. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

/** Listeners told when the API answers 401 (the app then shows the token screen). */
const unauthorized = new Set<(e: ApiError) => void>();
export function onUnauthorized(fn: (e: ApiError) => void): () => void {
  unauthorized.add(fn);
  return () => unauthorized.delete(fn);
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = storedToken();
  return token ? { authorization: `Bearer ${token}`, ...extra } : extra;
}

export async function api<T>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers: headers(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
    signal: init.signal,
  });
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: reported below */
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string; path?: string } } | undefined)?.error;
    const err = new ApiError(res.status, e?.code ?? 'http_error', e?.message ?? `${res.status} ${res.statusText}`, e?.path);
    if (res.status === 401) for (const fn of unauthorized) fn(err);
    throw err;
  }
  return body as T;
}

export interface AuthState {
  required: boolean;
  open_to_this_caller: boolean;
  token: { name: string; scopes: string[] } | null;
  /** The scopes this caller may use (`read`, `write`, `admin`): the API's answer, so the views offer only what it allows. */
  allows: string[];
}

let allowed = new Set<string>();
/** Remember what the API said this caller may do (GET /v1/auth). */
export function setAllowed(auth: AuthState): void {
  allowed = new Set(auth.allows);
}
/** Whether this caller's token (or the open API) allows `scope`: actions it does not allow are not offered. */
export function can(scope: 'read' | 'write' | 'admin'): boolean {
  return allowed.has(scope);
}

/**
 * Read `event:`/`data:` frames from a text/event-stream until `signal`
 * aborts or the server ends the stream. Resolves quietly on abort.
 */
export async function readEvents(path: string, signal: AbortSignal, onEvent: (event: string, data: any) => void): Promise<void> {
  let res: Response;
  try {
    res = await fetch(path, { headers: headers({ accept: 'text/event-stream' }), signal });
  } catch (err) {
    if (signal.aborted) return;
    throw err;
  }
  if (!res.ok || !res.body) {
    await res.text().catch(() => undefined);
    throw new ApiError(res.status, 'stream_failed', `event stream ${path} answered ${res.status}`);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of frame.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
        }
        if (data.length) onEvent(event, JSON.parse(data.join('\n')));
      }
    }
  } catch (err) {
    if (signal.aborted) return;
    throw err;
  }
}

/**
 * Keep an event stream open while `signal` is live: reconnect after a
 * dropped connection (a restarted orchestrator), calling `onOpen` each time
 * so the caller re-reads what it may have missed.
 */
export function followEvents(path: string, signal: AbortSignal, onEvent: (event: string, data: any) => void, onOpen: () => void = () => {}): void {
  const loop = async () => {
    while (!signal.aborted) {
      try {
        await readEvents(path, signal, (ev, data) => {
          if (ev === 'hello') onOpen();
          onEvent(ev, data);
        });
      } catch {
        /* dropped: wait and reconnect */
      }
      if (signal.aborted) return;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  };
  void loop();
}
