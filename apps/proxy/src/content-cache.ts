import { join, resolve } from 'node:path';
import {
  CachedStorage,
  LocalInvalidationBus,
  RedisInvalidationBus,
  type InvalidationBus,
} from '@modproxy/content-cache';
import type { Logger } from '@modproxy/observability';
import { createQueueRedis } from '@modproxy/queue';
import type { ModuleStorage } from '@modproxy/storage';
import type { ProxyConfig } from './config';
import type { ContentCacheMetrics } from './content-cache-metrics';

export interface ContentCacheOptions {
  /**
   * How purges reach this process's cache when there is no queue Redis: a cluster worker's
   * channel to its primary. @default this process only
   */
  clusterBus?: InvalidationBus;
  /** Whether this process may have a disk tier (off in cluster workers). @default true */
  disk?: boolean;
}

/**
 * The per-replica content cache in front of `storage`, as the configuration says: the memory
 * tier always (unless CACHE_MEMORY_MAX_BYTES=0), the disk tier in the production shape
 * (STORAGE_TYPE=grpc) only, since the embedded default's disk storage is a local disk already.
 * Purges reach every replica through the queue Redis when there is one, a cluster's workers
 * through their primary, and otherwise this process alone.
 */
export async function cacheStorage(
  config: ProxyConfig,
  storage: ModuleStorage,
  logger: Logger,
  metrics: ContentCacheMetrics,
  options: ContentCacheOptions = {},
): Promise<CachedStorage> {
  const diskDir =
    config.STORAGE_TYPE === 'grpc' && config.CACHE_MAX_BYTES > 0 && options.disk !== false
      ? resolve(config.CACHE_DIR)
      : undefined;
  const cache = await CachedStorage.open({
    storage,
    memoryMaxBytes: config.CACHE_MEMORY_MAX_BYTES,
    zipMemoryMaxBytes: config.CACHE_ZIP_MEMORY_MAX_BYTES,
    ...(diskDir ? { disk: { dir: diskDir, maxBytes: config.CACHE_MAX_BYTES } } : {}),
    bus: invalidationBus(config, logger, diskDir, options.clusterBus),
    events: metrics.events,
  });
  metrics.watch(() => cache.stats());
  return cache;
}

function invalidationBus(
  config: ProxyConfig,
  logger: Logger,
  diskDir: string | undefined,
  clusterBus: InvalidationBus | undefined,
): InvalidationBus {
  if (!config.QUEUE_REDIS_URL) return clusterBus ?? new LocalInvalidationBus();
  // A connection of its own: its reader blocks, and its life is the cache's.
  const connection = createQueueRedis(config.QUEUE_REDIS_URL, { connectionName: 'modproxy-proxy-cache' });
  const bus = new RedisInvalidationBus({
    connection,
    prefix: config.QUEUE_PREFIX,
    ...(diskDir ? { cursorFile: join(diskDir, 'invalidations.cursor') } : {}),
    onError: (error) =>
      logger.warn({ err: error.message }, 'content cache: reading purges from the queue Redis'),
  });
  return {
    publish: (ref) => bus.publish(ref),
    subscribe: (listener) => bus.subscribe(listener),
    close: async () => {
      await bus.close();
      connection.disconnect();
    },
  };
}
