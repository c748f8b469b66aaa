import { createServer, type Server } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { closeHttp, listenHttp } from '@modproxy/http';
import type { Logger } from '@modproxy/observability';
import { fetchTempDirs, leftoverFetchDirAgeMs, startTempDirSweeps } from '@modproxy/runtime';
import { composeProxy, type ComposeOverrides, type ProxyComposition } from './compose';
import type { ProxyConfig } from './config';

export interface RunningProxy {
  composition: ProxyComposition;
  server: Server;
  /** The base URL to put in GOPROXY. */
  url: string;
  /** Readiness off (for SHUTDOWN_DELAY_MS), stop accepting, drain in-flight requests (bounded), close storage. */
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
  // Temp directories of fetches that a crash left behind (every fetch removes its own by its deadline).
  const longestFetchMs = Math.max(config.FETCH_TIMEOUT_MS, config.UPSTREAM_TIMEOUT_MS);
  const tempDirSweeps = startTempDirSweeps(fetchTempDirs(config.GO_WORK_DIR, longestFetchMs), {
    intervalMs: leftoverFetchDirAgeMs(longestFetchMs) / 4,
    onRemoved: (dir, names) =>
      logger.info({ dir, count: names.length }, 'removed leftover fetch temp directories'),
    onError: (dir, error) =>
      logger.warn({ dir, err: error }, 'could not sweep leftover fetch temp directories'),
  });

  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= (async () => {
      composition.beginShutdown();
      // Readiness fails first, while requests are still served, so load balancers move away.
      if (config.SHUTDOWN_DELAY_MS > 0) await delay(config.SHUTDOWN_DELAY_MS);
      await closeHttp(server, config.SHUTDOWN_TIMEOUT_MS);
      await tempDirSweeps.stop();
      await composition.close();
      logger.info('proxy stopped');
    })();
    return closing;
  };
  return { composition, server, url, shutdown };
}
