/**
 * TCP ports on 127.0.0.1: is one free, and find a free one.
 */
import net from 'node:net';
import getPort from 'get-port';

const HOST = '127.0.0.1';

/**
 * Whether nothing listens on `port` right now. A plain listen-and-close: not
 * get-port, which reports a port it handed out in the last 15 s as taken even
 * when nothing listens there, and a server restarted on its recorded port
 * must find that port free.
 */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: HOST, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A port nothing listens on: `preferred` when it is free, another otherwise.
 * get-port also keeps a port it handed out from being handed out again by
 * this process for a while, so servers started together never pick the same.
 */
export function freePort(preferred?: number): Promise<number> {
  return getPort({ host: HOST, ...(preferred !== undefined ? { port: preferred } : {}) });
}
