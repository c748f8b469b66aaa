import { createServer, type Server } from 'node:http';
import express from 'express';
import { setTimeout as delay } from 'node:timers/promises';
import { AdminAuth, closeHttp, listenHttp } from '@modproxy/http';
import type { Logger } from '@modproxy/observability';
import { createStatusApp, type ProxyStatus } from '@modproxy/status-page';
import { fetchTempDirs, leftoverFetchDirAgeMs, startTempDirSweeps } from '@modproxy/runtime';
import { composeProxy, type ComposeOverrides, type ProxyComposition } from './compose';
import { createPurgeRoute, type PurgeRouteOptions } from './http/purge-route';
import type { ProxyConfig } from './config';

export interface RunningProxy {
  composition: ProxyComposition;
  server: Server;
  /** The base URL to put in GOPROXY. */
  url: string;
  /** Base URL of the admin port (the status page at `/`), when ADMIN_PORT is set. */
  adminUrl?: string;
  /** Readiness off (for SHUTDOWN_DELAY_MS), stop accepting, drain in-flight requests (bounded), close storage. */
  shutdown(): Promise<void>;
}

export interface StartProxyOptions extends ComposeOverrides {
  /**
   * The admin port and the sweeps of leftover fetch directories. Off in a cluster worker: its
   * primary runs them (it fetches). @default true
   */
  housekeeping?: boolean;
}

export async function startProxy(
  config: ProxyConfig,
  logger: Logger,
  options: StartProxyOptions = {},
): Promise<RunningProxy> {
  const { housekeeping = true, ...overrides } = options;
  const composition = await composeProxy(config, logger, overrides);
  // The GOPROXY reads on the lean path; Express for everything else.
  const { app, goproxy } = composition.app;
  const server = createServer((req, res) => {
    if (!goproxy.handle(req, res)) app(req, res);
  });
  const bound = await listenHttp(server, config.PORT, config.HOST);
  // Zips can be large and clients slow: no overall request timeout, but idle sockets go.
  server.requestTimeout = 0;
  const url = config.PUBLIC_URL ?? bound;
  let admin: { server: Server; url: string } | undefined;
  try {
    if (housekeeping) admin = await startAdmin(config, composition.status, logger, composition.purge);
  } catch (error) {
    await closeHttp(server, 0);
    await composition.close();
    throw error;
  }
  const tempDirSweeps = housekeeping ? startFetchDirSweeps(config, logger) : undefined;

  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= (async () => {
      composition.beginShutdown();
      // Readiness fails first, while requests are still served, so load balancers move away.
      if (config.SHUTDOWN_DELAY_MS > 0) await delay(config.SHUTDOWN_DELAY_MS);
      await closeHttp(server, config.SHUTDOWN_TIMEOUT_MS);
      if (admin) await closeHttp(admin.server, 1_000);
      await tempDirSweeps?.stop();
      await composition.close();
      logger.info('proxy stopped');
    })();
    return closing;
  };
  return { composition, server, url, ...(admin ? { adminUrl: admin.url } : {}), shutdown };
}

/** Temp directories of fetches that a crash left behind (every fetch removes its own by its deadline). */
export function startFetchDirSweeps(config: ProxyConfig, logger: Logger): { stop(): Promise<void> } {
  const longestFetchMs = Math.max(config.FETCH_TIMEOUT_MS, config.UPSTREAM_TIMEOUT_MS);
  return startTempDirSweeps(fetchTempDirs(config.GO_WORK_DIR, longestFetchMs), {
    intervalMs: leftoverFetchDirAgeMs(longestFetchMs) / 4,
    onRemoved: (dir, names) =>
      logger.info({ dir, count: names.length }, 'removed leftover fetch temp directories'),
    onError: (dir, error) =>
      logger.warn({ dir, err: error }, 'could not sweep leftover fetch temp directories'),
  });
}

/**
 * The admin port with the status page and the purge of a version (`DELETE /modules/…`, when
 * `purge` is given), when ADMIN_PORT is set; off (404) without credentials.
 */
export async function startAdmin(
  config: ProxyConfig,
  status: ProxyStatus,
  logger: Logger,
  purge?: PurgeRouteOptions['purge'],
): Promise<{ server: Server; url: string } | undefined> {
  if (config.ADMIN_PORT === undefined) return undefined;
  const auth = AdminAuth.fromConfig(config);
  if (auth.mode === 'off') logger.warn('the status page is off: set ADMIN_PASSWORD or ADMIN_TOKEN');
  const statusApp = createStatusApp({ status, auth, logger, title: 'modproxy proxy status' });
  // Only DELETE /modules/… is the purge's; everything else is the status app's, as before.
  const app = purge
    ? express().disable('x-powered-by').use(createPurgeRoute({ purge, auth, logger }), statusApp)
    : statusApp;
  const server = createServer(app);
  const url = await listenHttp(server, config.ADMIN_PORT, config.ADMIN_HOST);
  logger.info({ admin: url }, 'proxy admin listening');
  return { server, url };
}
