import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { closeHttp, createServiceApp, finishServiceApp, listenHttp } from '@modproxy/http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { Counter, createHttpMetrics, Gauge, type Logger } from '@modproxy/observability';
import { DiskStorage, MemoryStorage, type ModuleStorage } from '@modproxy/storage';
import { startStorageGrpcServer } from '@modproxy/storage-grpc';
import { MongoStorage } from '@modproxy/storage-mongo';
import type { StorageConfig } from './config';
import { DatabaseReadiness } from './database-readiness';

export interface RunningStorageService {
  grpcPort: number;
  httpPort: number;
  shutdown(): Promise<void>;
}

interface Backend {
  storage: ModuleStorage;
  /** Rejects while the backend cannot serve (readiness follows the database connection). */
  ping(signal: AbortSignal): Promise<void>;
}

async function openBackend(config: StorageConfig): Promise<Backend> {
  switch (config.STORAGE_BACKEND) {
    case 'mongo': {
      const storage = await MongoStorage.connect({
        uri: config.MONGODB_URI ?? '',
        database: config.MONGODB_DATABASE,
        bucketName: config.GRIDFS_BUCKET,
      });
      return { storage, ping: (signal) => storage.ping({ signal }) };
    }
    case 'disk':
      return {
        storage: await DiskStorage.open({ root: resolve(config.STORAGE_DIR) }),
        ping: async () => undefined,
      };
    case 'memory':
      return { storage: new MemoryStorage(), ping: async () => undefined };
  }
}

/** The storage service: one backend behind the gRPC StorageService, health and metrics. */
export async function startStorageService(
  config: StorageConfig,
  logger: Logger,
): Promise<RunningStorageService> {
  const backend = await openBackend(config);
  const tls =
    config.TLS_CERT_FILE && config.TLS_KEY_FILE
      ? { cert: readFileSync(config.TLS_CERT_FILE), key: readFileSync(config.TLS_KEY_FILE) }
      : undefined;
  const grpc = await startStorageGrpcServer({
    storage: backend.storage,
    host: config.GRPC_HOST,
    port: config.GRPC_PORT,
    ...(config.STORAGE_TOKEN ? { token: config.STORAGE_TOKEN } : {}),
    ...(tls ? { tls } : {}),
    maxZipBytes: config.MAX_ZIP_BYTES,
    shutdownGraceMs: config.SHUTDOWN_TIMEOUT_MS,
  });

  const metrics = createHttpMetrics('modproxy_storage');
  const readyGauge = new Gauge({
    name: 'modproxy_storage_ready',
    help: '1 while the backend answers',
    registers: [metrics.registry],
  });
  const pings = new Counter({
    name: 'modproxy_storage_readiness_pings_total',
    help: 'Readiness pings of the backend by result',
    labelNames: ['result'] as const,
    registers: [metrics.registry],
  });
  const failuresInRow = new Gauge({
    name: 'modproxy_storage_readiness_consecutive_failures',
    help: 'Readiness pings failed in a row (readiness turns off at READINESS_FAILURES)',
    registers: [metrics.registry],
  });
  let shuttingDown = false;
  const readiness = new DatabaseReadiness({
    ping: (signal) => backend.ping(signal),
    intervalMs: config.READINESS_INTERVAL_MS,
    timeoutMs: config.READINESS_TIMEOUT_MS,
    failureThreshold: config.READINESS_FAILURES,
    onPing: (result, consecutive, error) => {
      pings.inc({ result });
      failuresInRow.set(consecutive);
      if (result === 'failed') {
        logger.warn(
          { err: error instanceof Error ? error.message : String(error), consecutive },
          'backend ping failed',
        );
      }
    },
    onChange: (ready) => {
      if (ready) logger.info('backend reachable again: serving');
      else logger.warn({ failures: config.READINESS_FAILURES }, 'backend unreachable: not serving');
      readyGauge.set(ready ? 1 : 0);
      grpc.setServing(ready);
    },
  });
  readyGauge.set(1);
  await readiness.start();

  const app = finishServiceApp(
    createServiceApp({
      logger,
      metrics,
      isShuttingDown: () => shuttingDown,
      readiness: async () => {
        if (!readiness.ready) throw new Error('the storage backend does not answer');
        return 'ok';
      },
    }),
    logger,
  );
  const http = createServer(app);
  await listenHttp(http, config.HTTP_PORT, config.GRPC_HOST);

  let closing: Promise<void> | undefined;
  return {
    grpcPort: grpc.port,
    httpPort: (http.address() as AddressInfo).port,
    shutdown: () =>
      (closing ??= (async () => {
        shuttingDown = true;
        readiness.stop();
        await Promise.all([grpc.close(), closeHttp(http, config.SHUTDOWN_TIMEOUT_MS)]);
        await backend.storage.close();
        logger.info('storage service stopped');
      })()),
  };
}
