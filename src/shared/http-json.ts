/**
 * The HTTP helper weft's own processes use to talk to weft's API (`weft
 * cluster`, `bench`; the commands a user runs go through src/client): JSON in and out over `fetch`,
 * every call bounded by a timeout, and a failure to connect or to answer in
 * time reported as an error that names the URL.
 */
import { WeftError } from './errors.js';

/** The server could not be reached, or did not answer in time. */
export class HttpUnreachableError extends WeftError {
  override name = 'HttpUnreachableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('http_unreachable', message, options);
  }
}

export interface JsonResponse {
  status: number;
  /** The parsed body; the raw text when it is not JSON; undefined when empty. */
  body: any;
  headers: Headers;
}

export interface JsonRequest {
  body?: unknown;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  timeoutMs?: number;
}

/**
 * @example
 *   const { status, body } = await requestJson('POST', `${url}/v1/tasks`, { body: { namespace, name, context } });
 */
export async function requestJson(method: 'GET' | 'POST' | 'DELETE', url: string, req: JsonRequest = {}): Promise<JsonResponse> {
  const timeoutMs = req.timeoutMs ?? 30_000;
  const headers: Record<string, string> = {};
  if (req.body !== undefined) headers['content-type'] = 'application/json';
  if (req.token) headers.authorization = `Bearer ${req.token}`;
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await res.text();
  } catch (err) {
    const e = err as Error;
    const cause = e.cause as { code?: string; message?: string } | undefined;
    const reason = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause?.code ?? cause?.message ?? e.message);
    const hint = reason === 'ECONNREFUSED' ? ' (nothing listens there: is the server running, and is the URL right?)' : '';
    throw new HttpUnreachableError(`${method} ${url}: ${reason}${hint}`, { cause: err });
  }
  let body: unknown = text === '' ? undefined : text;
  try {
    if (text !== '') body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body, headers: res.headers };
}

/** GET with a short timeout: health checks and status pages. */
export function getJson(url: string, timeoutMs = 2000): Promise<JsonResponse> {
  return requestJson('GET', url, { timeoutMs });
}
