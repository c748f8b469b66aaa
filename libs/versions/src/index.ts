export * from './versions-provider';
export * from './upstream-versions';
export * from './version-store';
export { MemoryVersionStore, type MemoryVersionStoreOptions } from './memory-version-store';
export { RedisVersionStore, type RedisVersionStoreOptions } from './redis-version-store';
export {
  createCacheRedis,
  createQueueRedis,
  waitForRedis,
  type RedisConnectionOptions,
} from './redis-connection';
export * from './revalidation-queue';
export {
  InProcessRevalidationQueue,
  type InProcessRevalidationQueueOptions,
} from './in-process-revalidation-queue';
export * from './bullmq-revalidation-queue';
export * from './bullmq-revalidation-worker';
export * from './cached-versions';
export * from './failover-versions';
export { ExpiringMap } from './expiring-map';
