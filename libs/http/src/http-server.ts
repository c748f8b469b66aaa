import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerClientErrorsInText } from './client-error';

/**
 * Starts `server` listening and resolves with its base URL once it does (port 0 picks a free
 * port). A wildcard host is shown as 127.0.0.1: reachable, and never an IPv6 `localhost` that
 * an IPv4-only listener would refuse.
 */
export async function listenHttp(server: Server, port: number, host: string): Promise<string> {
  answerClientErrorsInText(server);
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

/** Stops accepting, lets running requests finish for up to `graceMs`, then cuts the rest off. */
export async function closeHttp(server: Server, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearTimeout(timer);
}
