import { createServer, type Server } from 'node:http';
import { closeHttp, listenHttp } from '@modproxy/http';
import type { Logger } from '@modproxy/observability';
import { fetchTempDirs, leftoverFetchDirAgeMs, startTempDirSweeps } from '@modproxy/runtime';
import { composeCrathens, type CrathensComposition, type CrathensOverrides } from './compose';
import type { CrathensConfig } from './config';

const REDIS_START_WAIT_MS = 5_000;

export interface RunningCrathens {
  composition: CrathensComposition;
  admin: Server;
  /** Base URL of the admin HTTP port (/healthz, /readyz, /metrics). */
  adminUrl: string;
  /**
   * Readiness off; workers stop taking jobs and running ones finish (handed back to the queue
   * after SHUTDOWN_TIMEOUT_MS); then the admin port and every client close.
   */
  shutdown(): Promise<void>;
}

export async function startCrathens(
  config: CrathensConfig,
  logger: Logger,
  overrides: CrathensOverrides = {},
): Promise<RunningCrathens> {
  const composition = await composeCrathens(config, logger, overrides);
  const admin = createServer(composition.app);
  let adminUrl: string;
  try {
    adminUrl = await listenHttp(admin, config.ADMIN_PORT, config.ADMIN_HOST);
    // Workers and schedulers start once the queue Redis answers. Waiting for it without bound
    // would leave the process deaf to SIGTERM; past the wait they go on starting by themselves
    // while /readyz says why it is not ready.
    const starting = (async () => {
      for (const component of composition.components) await component.start();
    })();
    if (!(await settlesWithin(starting, REDIS_START_WAIT_MS))) {
      logger.warn(
        { waitedMs: REDIS_START_WAIT_MS },
        'queue Redis not reachable yet; workers start when it is',
      );
      starting.catch((error: unknown) =>
        logger.error({ err: (error as Error).message }, 'a worker or scheduler could not start'),
      );
    }
  } catch (error) {
    composition.beginShutdown();
    await composition.close();
    if (admin.listening) await closeHttp(admin, 0);
    throw error;
  }

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
      await tempDirSweeps.stop();
      await composition.close();
      await closeHttp(admin, 1_000);
      logger.info('crathens stopped');
    })();
    return closing;
  };
  return { composition, admin, adminUrl, shutdown };
}

/** True once `promise` resolved, false if it is still pending after `ms`; rejects if it rejected first. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), waited]);
  } finally {
    clearTimeout(timer);
  }
}
