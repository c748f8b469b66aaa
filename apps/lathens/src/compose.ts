import { resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { grpcClientTls } from '@modproxy/grpc';
import type { HttpMetrics, Logger } from '@modproxy/observability';
import { closeQueueConnection } from '@modproxy/queue';
import { DiskStorage, MemoryStorage, type ModuleStorage } from '@modproxy/storage';
import { GrpcStorage } from '@modproxy/storage-grpc';
import { createUpstreamFromConfig, moduleFilterFromConfig, type Upstream } from '@modproxy/upstream';
import {
  BullmqRevalidationQueue,
  BullmqRevalidationWorker,
  CachedVersions,
  createCacheRedis,
  createQueueRedis,
  RedisVersionStore,
  waitForRedis,
} from '@modproxy/versions';
import type { VersionService } from '@modproxy/versions-grpc';
import type { LathensConfig } from './config';
import { FilteredVersionService } from './filtered-version-service';
import { createLathensApp } from './http/lathens-app';
import { LathensMetrics } from './lathens-metrics';

export interface LathensOverrides {
  /** Used instead of the one STORAGE_TYPE describes; not closed by lathens. */
  storage?: ModuleStorage;
  /** Used instead of the chain UPSTREAM describes. */
  upstream?: Upstream;
}

export interface LathensComposition {
  /** What HTTP and gRPC serve: the cache behind the module filter. */
  versions: VersionService;
  app: ReturnType<typeof createLathensApp>;
  metrics: HttpMetrics;
  /** Every metric of lathens (the gRPC server's listener among them). */
  lathensMetrics: LathensMetrics;
  worker: BullmqRevalidationWorker | undefined;
  /** Resolves with `ok` when the cache Redis answers. */
  readiness(): Promise<string>;
  /** Waits up to `timeoutMs` for the first Redis connection; resolves either way (readiness tells). */
  waitForRedis(timeoutMs: number): Promise<boolean>;
  /** Told on every change of readiness (Redis connected or not). */
  onReadinessChange(listener: (ready: boolean) => void): void;
  beginShutdown(): void;
  isShuttingDown(): boolean;
  close(): Promise<void>;
}

/** How long shutdown waits for running revalidations and the queue Redis to close cleanly. */
const QUEUE_CLOSE_WAIT_MS = 5_000;

/** The composition root: configuration in, a wired lathens out. Logic lives in @modproxy/versions. */
export async function composeLathens(
  config: LathensConfig,
  logger: Logger,
  overrides: LathensOverrides = {},
): Promise<LathensComposition> {
  const counters = new LathensMetrics();
  const metrics = counters.http;
  const ownedStorage = overrides.storage ? undefined : await createStorage(config);
  const storage = overrides.storage ?? ownedStorage ?? new MemoryStorage();
  const upstream =
    overrides.upstream ??
    createUpstreamFromConfig(config, {
      fetchTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
      onCall: counters.upstreamCall,
    });

  const cacheRedis = createCacheRedis(config.REDIS_URL, { connectionName: 'lathens-cache' });
  const queueRedis = createQueueRedis(config.QUEUE_REDIS_URL ?? config.REDIS_URL, {
    connectionName: 'lathens-queue',
  });
  const bullPrefix = config.KEY_PREFIX.replace(/:+$/, '') || 'lathens';
  const queue = new BullmqRevalidationQueue({ connection: queueRedis, prefix: bullPrefix });
  counters.watchRevalidationQueue(queue.queue);
  const store = new RedisVersionStore({
    redis: cacheRedis,
    keyPrefix: config.KEY_PREFIX,
    retainMs: config.RETAIN_MS,
  });

  const versions = new CachedVersions({
    store,
    storage,
    upstream,
    queue,
    networkMode: config.NETWORK_MODE,
    softTtlMs: config.SOFT_TTL_MS,
    hardTtlMs: config.HARD_TTL_MS,
    negativeTtlMs: config.NEGATIVE_TTL_MS,
    failureTtlMs: config.FAILURE_TTL_MS,
    revalidateWindowMs: config.REVALIDATE_WINDOW_MS,
    waitTimeoutMs: config.WAIT_TIMEOUT_MS,
    upstreamTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
    events: {
      answered: (kind, outcome) => counters.answers.inc({ kind, outcome }),
      upstreamCalled: (kind, module, result, durationMs) => {
        counters.upstreamCalls.inc({ kind, result });
        logger.debug({ kind, module, result, durationMs }, 'upstream called');
      },
      servedStale: (kind, module, error) => {
        counters.staleServed.inc({ kind });
        logger.warn(
          { kind, module, errKind: error.kind, op: error.op, detail: error.detail, err: error.message },
          'upstream failed; served the last answer',
        );
      },
      storeFailed: (operation, error) => {
        counters.storeFailures.inc({ operation });
        logger.warn(
          { operation, err: error instanceof Error ? error.message : String(error) },
          'Redis failed; answered without the cache',
        );
      },
      revalidationFailed: (module, error) => {
        counters.revalidationFailures.inc();
        logger.warn(
          { module, err: error instanceof Error ? error.message : String(error) },
          'revalidation failed',
        );
      },
      coalesced: counters.coalesced,
    },
  });

  const worker = config.RUN_WORKER
    ? new BullmqRevalidationWorker({
        connection: queueRedis,
        prefix: bullPrefix,
        concurrency: config.REVALIDATION_CONCURRENCY,
        revalidate: (module) => counters.revalidation(() => versions.revalidate(module)),
        onError: (module, error) => {
          counters.revalidationFailures.inc();
          logger.warn(
            { module, err: error instanceof Error ? error.message : String(error) },
            'revalidation job failed',
          );
        },
      })
    : undefined;

  const listeners: Array<(ready: boolean) => void> = [];
  const announce = (ready: boolean) => {
    counters.setRedisUp(ready);
    for (const listener of listeners) listener(ready);
  };
  watchConnection(cacheRedis, logger, announce);

  let shuttingDown = false;
  const readiness = async () => {
    if (cacheRedis.status !== 'ready') throw new Error(`Redis is ${cacheRedis.status}`);
    await store.ping();
    return 'ok';
  };
  // Both transports answer through the filter; the upstream chain refuses the same modules for
  // background revalidations.
  const moduleFilter = moduleFilterFromConfig(config);
  const served = new FilteredVersionService(versions, moduleFilter);
  const app = createLathensApp({
    versions: served,
    moduleFilter,
    logger,
    metrics,
    readiness,
    isShuttingDown: () => shuttingDown,
    maxAgeSeconds: Math.max(1, Math.floor(config.SOFT_TTL_MS / 1_000)),
  });

  return {
    versions: served,
    app,
    metrics,
    lathensMetrics: counters,
    worker,
    readiness,
    waitForRedis: (timeoutMs) =>
      waitForRedis(cacheRedis, timeoutMs).then(
        () => true,
        () => false,
      ),
    onReadinessChange: (listener) => listeners.push(listener),
    beginShutdown: () => {
      shuttingDown = true;
    },
    isShuttingDown: () => shuttingDown,
    close: async () => {
      // Running revalidations finish while the queue Redis answers; one that is away or refuses
      // us must not hold the process (a job cut short is picked up again by another replica).
      await closeQueueConnection(queueRedis, {
        graceMs: Math.min(QUEUE_CLOSE_WAIT_MS, config.SHUTDOWN_TIMEOUT_MS),
        closeClients: async (force) => {
          await worker?.close(force);
          await versions.close();
          await queue.close();
        },
      });
      if (!overrides.upstream) await upstream.close?.();
      // No offline queue: QUIT fails at once when the cache Redis is away.
      await cacheRedis.quit().catch(() => undefined);
      cacheRedis.disconnect();
      await ownedStorage?.close();
    },
  };
}

/** Readiness follows the cache connection: ready on `ready`, not ready when it closes. */
function watchConnection(redis: Redis, logger: Logger, announce: (ready: boolean) => void): void {
  let ready = false;
  const set = (next: boolean) => {
    if (next === ready) return;
    ready = next;
    logger[next ? 'info' : 'warn'](
      { redis: next ? 'connected' : 'disconnected' },
      'cache Redis connection changed',
    );
    announce(next);
  };
  redis.on('ready', () => set(true));
  redis.on('close', () => set(false));
  redis.on('end', () => set(false));
  if (redis.status === 'ready') set(true);
}

async function createStorage(config: LathensConfig): Promise<ModuleStorage | undefined> {
  switch (config.STORAGE_TYPE) {
    case 'disk':
      return DiskStorage.open({ root: resolve(config.STORAGE_DIR) });
    case 'grpc':
      return new GrpcStorage({
        url: config.STORAGE_GRPC_URL ?? '',
        ...(config.STORAGE_TOKEN ? { token: config.STORAGE_TOKEN } : {}),
        tls: grpcClientTls(config.STORAGE_TLS, config.STORAGE_TLS_CA_FILE),
        deadlineMs: config.UPSTREAM_TIMEOUT_MS,
        ...(config.GO_WORK_DIR ? { zipSpoolDir: config.GO_WORK_DIR } : {}),
      });
    case 'none':
      return undefined;
  }
}
