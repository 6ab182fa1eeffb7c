import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpUnreachableError, requestJson } from '../../src/shared/http-json.js';
import { freePort } from '../../src/ops/ports.js';

describe('requestJson', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/slow') return void setTimeout(() => res.end('{}'), 2_000);
      if (req.url === '/text') return void res.end('plain words');
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        res.writeHead(req.url === '/teapot' ? 418 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, auth: req.headers.authorization ?? null, got: body ? JSON.parse(body) : null }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('sends JSON with the bearer token and parses the answer, whatever its status', async () => {
    const res = await requestJson('POST', `${base}/teapot`, { body: { a: [1, 'x'] }, token: 't0k' });
    expect(res.status).toBe(418);
    expect(res.body).toEqual({ method: 'POST', auth: 'Bearer t0k', got: { a: [1, 'x'] } });
  });

  it('keeps a body that is not JSON as text', async () => {
    expect((await requestJson('GET', `${base}/text`)).body).toBe('plain words');
  });

  it('gives up after the timeout, naming the URL', async () => {
    const err = await requestJson('GET', `${base}/slow`, { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpUnreachableError);
    expect((err as Error).message).toBe(`GET ${base}/slow: no answer within 100 ms`);
  });

  it('says when nothing listens at the URL', async () => {
    const url = `http://127.0.0.1:${await freePort()}/v1/tasks`;
    const err = await requestJson('POST', url, { body: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpUnreachableError);
    expect((err as Error).message).toMatch(new RegExp(`^POST ${url}: ECONNREFUSED \\(nothing listens there`));
  });
});
