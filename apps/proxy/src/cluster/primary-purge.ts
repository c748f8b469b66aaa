import cluster from 'node:cluster';
import { ClusterInvalidationRelay, purgeVersion, RedisInvalidationBus } from '@modproxy/content-cache';
import type { Logger } from '@modproxy/observability';
import { createQueueRedis } from '@modproxy/queue';
import type { ModuleStorage } from '@modproxy/storage';
import { createStorage } from '../compose';
import type { ProxyConfig } from '../config';

/** The purge of the primary's admin port, and what it holds. */
export interface PrimaryPurge {
  purge(module: string, version: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Purges where the admin port is the primary's (WORKERS > 1): the version is deleted from
 * storage (the primary's own, when it fetches) and the workers' content caches are told,
 * through the queue Redis when there is one (every replica's workers read it), through the
 * primary's IPC relay otherwise, which also passes on what any worker publishes.
 */
export async function createPrimaryPurge(
  config: ProxyConfig,
  logger: Logger,
  fetchingStorage: ModuleStorage | undefined,
): Promise<PrimaryPurge> {
  const storage = fetchingStorage ?? (await createStorage(config));
  const relay = new ClusterInvalidationRelay(cluster);
  const connection = config.QUEUE_REDIS_URL
    ? createQueueRedis(config.QUEUE_REDIS_URL, { connectionName: 'modproxy-proxy-primary-purge' })
    : undefined;
  const bus = connection ? new RedisInvalidationBus({ connection, prefix: config.QUEUE_PREFIX }) : relay;
  return {
    purge: async (module, version) => {
      await purgeVersion(storage, bus, { module, version });
      logger.debug({ module, version }, 'purge sent to the workers');
    },
    close: async () => {
      await relay.close();
      connection?.disconnect();
      if (!fetchingStorage) await storage.close();
    },
  };
}
