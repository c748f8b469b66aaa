import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@modproxy/observability';
import { composeProxy, type ComposeOverrides, type ProxyComposition } from './compose';
import type { ProxyConfig } from './config';

export interface RunningProxy {
  composition: ProxyComposition;
  server: Server;
  /** The base URL to put in GOPROXY. */
  url: string;
  /** Readiness off, stop accepting, drain in-flight requests (bounded), close storage. */
  shutdown(): Promise<void>;
}

export async function startProxy(
  config: ProxyConfig,
  logger: Logger,
  overrides: ComposeOverrides = {},
): Promise<RunningProxy> {
  const composition = await composeProxy(config, logger, overrides);
  const server = composition.app.listen(config.PORT, config.HOST);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  // Zips can be large and clients slow: no overall request timeout, but idle sockets go.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
  const { port } = server.address() as AddressInfo;
  const url =
    config.PUBLIC_URL ??
    `http://${config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : hostForUrl(config.HOST)}:${port}`;

  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= (async () => {
      composition.beginShutdown();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS);
      await closed;
      clearTimeout(timer);
      await composition.close();
      logger.info('proxy stopped');
    })();
    return closing;
  };
  return { composition, server, url, shutdown };
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
