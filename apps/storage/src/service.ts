import { createServer } from 'node:http';
import { closeHttp, createServiceApp, finishServiceApp, listenHttp } from '@modproxy/http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { grpcServerTls } from '@modproxy/grpc';
import type { Logger } from '@modproxy/observability';
import { DiskStorage, MemoryStorage, type ModuleStorage } from '@modproxy/storage';
import { startStorageGrpcServer } from '@modproxy/storage-grpc';
import { MongoStorage } from '@modproxy/storage-mongo';
import type { StorageConfig } from './config';
import { DatabaseReadiness } from './database-readiness';
import { StorageMetrics } from './storage-metrics';

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
  const storageMetrics = new StorageMetrics();
  const metrics = storageMetrics.http;
  const tls = grpcServerTls(config.TLS_CERT_FILE, config.TLS_KEY_FILE);
  const grpc = await startStorageGrpcServer({
    storage: backend.storage,
    host: config.GRPC_HOST,
    port: config.GRPC_PORT,
    ...(config.STORAGE_TOKEN ? { token: config.STORAGE_TOKEN } : {}),
    ...(tls ? { tls } : {}),
    maxZipBytes: config.MAX_ZIP_BYTES,
    shutdownGraceMs: config.SHUTDOWN_TIMEOUT_MS,
    onCall: storageMetrics.onCall,
    zipBytes: storageMetrics.zipBytes,
  });

  let shuttingDown = false;
  const readiness = new DatabaseReadiness({
    ping: (signal) => backend.ping(signal),
    intervalMs: config.READINESS_INTERVAL_MS,
    timeoutMs: config.READINESS_TIMEOUT_MS,
    failureThreshold: config.READINESS_FAILURES,
    onPing: (result, consecutive, error) => {
      storageMetrics.ping(result, consecutive);
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
      storageMetrics.setReady(ready);
      grpc.setServing(ready);
    },
  });
  storageMetrics.setReady(true);
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
