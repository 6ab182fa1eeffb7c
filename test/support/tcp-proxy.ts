import net from 'node:net';

import { freePort } from './ports.js';

export { freePort };

/** Poll `read` until `ok` holds (errors count as "not yet"); throws naming `what` and the last value after `ms`. */
export async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  for (;;) {
    last = await read().catch(() => last);
    if (last !== undefined && ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface TcpProxy {
  port: number;
  /** Start forwarding (listen on `port`). */
  open(): Promise<void>;
  /** Stop listening and cut every forwarded connection: the target looks down (connection refused). */
  close(): Promise<void>;
  /** Keep accepting connections but forward nothing: the target looks frozen (connects and reads time out). */
  freeze(): void;
  /**
   * Once: on the next connection whose client sends bytes containing
   * `marker` (e.g. a prepared statement's name), cut the connection when the
   * target's answer arrives, without forwarding it. PostgreSQL answers an
   * autocommit statement after its COMMIT, so the statement took effect and
   * the client never hears so. Resolves when the cut happened.
   */
  cutAnswerTo(marker: string): Promise<void>;
}

/**
 * A TCP forwarder to `target` (PostgreSQL by default) on a port chosen now,
 * opened and closed by the test: an outage of a shared server without
 * touching the server.
 */
export function tcpProxy(port: number, target = { host: '127.0.0.1', port: 5432 }): TcpProxy {
  const sockets = new Set<net.Socket>();
  let frozen = false;
  let cut: { marker: Buffer; done: () => void } | undefined;
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (frozen) return; // accepted, never answered
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    let armed = false;
    forward(client, upstream, (chunk) => {
      if (cut && chunk.includes(cut.marker)) armed = true;
      return true;
    });
    forward(upstream, client, () => {
      if (!armed || !cut) return true;
      const { done } = cut;
      cut = undefined;
      client.destroy();
      upstream.destroy();
      done();
      return false;
    });
  });
  return {
    port,
    open: () => new Promise<void>((r) => server.listen(port, '127.0.0.1', r)),
    async close() {
      for (const s of sockets) s.destroy();
      if (server.listening) await new Promise((r) => server.close(r));
    },
    freeze() {
      frozen = true;
      for (const s of sockets) s.pause();
    },
    cutAnswerTo(marker: string) {
      return new Promise<void>((done) => {
        cut = { marker: Buffer.from(marker), done };
      });
    },
  };
}

/** Copy `from` to `to` with backpressure, each chunk only if `pass(chunk)` says so. */
function forward(from: net.Socket, to: net.Socket, pass: (chunk: Buffer) => boolean): void {
  from.on('data', (chunk: Buffer) => {
    if (pass(chunk) && !to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.on('end', () => to.end());
}

/**
 * A proxy to PostgreSQL, open, and `databaseUrl` rewritten to go through it:
 * for a worker whose database the test cuts off (or whose answers it drops).
 */
export async function proxiedDatabase(databaseUrl: string): Promise<{ proxy: TcpProxy; url: string }> {
  const port = await freePort();
  const proxy = tcpProxy(port);
  await proxy.open();
  const url = new URL(databaseUrl);
  url.host = `127.0.0.1:${port}`;
  return { proxy, url: url.toString() };
}
