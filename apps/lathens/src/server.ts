import { createServer, type Server } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { grpcServerTls } from '@modproxy/grpc';
import { closeHttp, listenHttp, urlHost } from '@modproxy/http';
import type { Logger } from '@modproxy/observability';
import { fetchTempDirs, leftoverFetchDirAgeMs, startTempDirSweeps } from '@modproxy/runtime';
import { startVersionsGrpcServer, type VersionsGrpcServer } from '@modproxy/versions-grpc';
import { composeLathens, type LathensComposition, type LathensOverrides } from './compose';
import type { LathensConfig } from './config';

const REDIS_START_WAIT_MS = 5_000;

export interface RunningLathens {
  composition: LathensComposition;
  http: Server;
  grpc: VersionsGrpcServer;
  /** Base URL of the HTTP side, to put in GOPROXY. */
  httpUrl: string;
  /** `host:port` of the gRPC side, for `LATHENS_GRPC_URL`. */
  grpcAddress: string;
  /** Readiness off (for SHUTDOWN_DELAY_MS), both servers drain (bounded), then the worker, queue and Redis connections close. */
  shutdown(): Promise<void>;
}

export async function startLathens(
  config: LathensConfig,
  logger: Logger,
  overrides: LathensOverrides = {},
): Promise<RunningLathens> {
  const composition = await composeLathens(config, logger, overrides);
  // Serving before Redis is there would send the first burst of requests to upstream uncached.
  if (!(await composition.waitForRedis(REDIS_START_WAIT_MS))) {
    logger.warn(
      { waitedMs: REDIS_START_WAIT_MS },
      'cache Redis not reachable yet; serving without it until it is',
    );
  }
  const grpc = await startVersionsGrpcServer({
    service: composition.versions,
    host: config.HOST,
    port: config.GRPC_PORT,
    shutdownGraceMs: config.SHUTDOWN_TIMEOUT_MS,
    onCall: composition.lathensMetrics.grpcCall,
    ...(config.GRPC_TOKEN ? { token: config.GRPC_TOKEN } : {}),
    tls: grpcServerTls(config.TLS_CERT_FILE, config.TLS_KEY_FILE),
  });
  // Health follows Redis: without it every answer costs an upstream call.
  grpc.setServing(false);
  composition.onReadinessChange((ready) => grpc.setServing(ready && !composition.isShuttingDown()));
  composition.readiness().then(
    () => grpc.setServing(!composition.isShuttingDown()),
    () => undefined,
  );

  const http = createServer(composition.app);
  const httpUrl = await listenHttp(http, config.HTTP_PORT, config.HOST);
  // Temp directories of the go command that a crash left behind (each removes its own by its deadline).
  const tempDirSweeps = startTempDirSweeps(fetchTempDirs(config.GO_WORK_DIR, config.UPSTREAM_TIMEOUT_MS), {
    intervalMs: leftoverFetchDirAgeMs(config.UPSTREAM_TIMEOUT_MS) / 4,
    onRemoved: (dir, names) =>
      logger.info({ dir, count: names.length }, 'removed leftover fetch temp directories'),
    onError: (dir, error) =>
      logger.warn({ dir, err: error }, 'could not sweep leftover fetch temp directories'),
  });

  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= (async () => {
      composition.beginShutdown();
      // Readiness fails first (HTTP and gRPC health), while requests are still served.
      grpc.setServing(false);
      if (config.SHUTDOWN_DELAY_MS > 0) await delay(config.SHUTDOWN_DELAY_MS);
      await Promise.all([closeHttp(http, config.SHUTDOWN_TIMEOUT_MS), grpc.close()]);
      await tempDirSweeps.stop();
      await composition.close();
      logger.info('lathens stopped');
    })();
    return closing;
  };
  return {
    composition,
    http,
    grpc,
    httpUrl,
    grpcAddress: `${urlHost(config.HOST)}:${grpc.port}`,
    shutdown,
  };
}
