import { createServer, type Server } from 'node:http';
import { closeHttp, listenHttp } from '@modproxy/http';
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
  const server = createServer(composition.app);
  const bound = await listenHttp(server, config.PORT, config.HOST);
  // Zips can be large and clients slow: no overall request timeout, but idle sockets go.
  server.requestTimeout = 0;
  const url = config.PUBLIC_URL ?? bound;

  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= (async () => {
      composition.beginShutdown();
      await closeHttp(server, config.SHUTDOWN_TIMEOUT_MS);
      await composition.close();
      logger.info('proxy stopped');
    })();
    return closing;
  };
  return { composition, server, url, shutdown };
}
