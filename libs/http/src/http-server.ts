import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerClientErrorsInText } from './client-error';

/**
 * Starts `server` listening and resolves with its base URL once it does (port 0 picks a free
 * port). A wildcard host is shown as 127.0.0.1: reachable, and never an IPv6 `localhost` that
 * an IPv4-only listener would refuse.
 */
export async function listenHttp(server: Server, port: number, host: string): Promise<string> {
  answerClientErrorsInText(server);
  trackResponses(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Longer than the usual load balancer idle timeout, so the balancer closes first.
  server.keepAliveTimeout = 65_000;
  const bound = (server.address() as AddressInfo).port;
  return `http://${urlHost(host)}:${bound}`;
}

/** `host` as it goes in a URL or a `host:port` address. */
export function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** Responses being answered, per server started with {@link listenHttp}. */
const inFlight = new WeakMap<Server, Set<ServerResponse>>();
/** Servers whose {@link closeHttp} began. */
const closing = new WeakSet<Server>();

/**
 * Knows the responses being answered, so that shutdown can end their keep-alive connections as
 * soon as each is done: a response that ends after shutdown began then says `Connection: close`
 * (when its headers are not out yet), and its connection, idle from then on, is closed.
 */
function trackResponses(server: Server): void {
  if (inFlight.has(server)) return;
  const responses = new Set<ServerResponse>();
  inFlight.set(server, responses);
  const done = function (this: ServerResponse) {
    responses.delete(this);
    if (closing.has(server)) server.closeIdleConnections();
  };
  // Before the app's own listener, which may write the headers at once.
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    // A request on a kept-alive connection after shutdown began is its last.
    if (closing.has(server) && !res.headersSent) res.setHeader('Connection', 'close');
    responses.add(res);
    // 'close' comes once the response is done (or its connection is gone), the socket detached.
    res.on('close', done);
  });
}

/**
 * Stops accepting, lets running requests finish for up to `graceMs`, then cuts the rest off. A
 * keep-alive connection is closed as soon as its response is done (idle ones at once): shutdown
 * waits for the responses, never for clients that keep connections open.
 */
export async function closeHttp(server: Server, graceMs: number): Promise<void> {
  closing.add(server);
  for (const res of inFlight.get(server) ?? []) if (!res.headersSent) res.setHeader('Connection', 'close');
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearTimeout(timer);
}
