export { CachedStorage, type CachedStorageOptions, type ContentCacheStats } from './cached-storage';
export type {
  CacheTier,
  ContentCacheEvents,
  EvictionReason,
  InvalidationOrigin,
  ReadSource,
} from './content-cache-events';
export type { CachedFile } from './cache-key';
export { LocalInvalidationBus, type InvalidationBus, type InvalidationListener } from './invalidation-bus';
export { RedisInvalidationBus, type RedisInvalidationBusOptions } from './redis-invalidation-bus';
export {
  ClusterInvalidationRelay,
  ClusterWorkerInvalidationBus,
  INVALIDATE_MESSAGE,
  type ClusterChannel,
} from './cluster-invalidation-bus';
export { purgeVersion } from './purge-version';
