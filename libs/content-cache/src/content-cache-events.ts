import type { ModuleError } from '@modproxy/errors';
import type { CachedFile } from './cache-key';

/** Where a read of a canonical version's file was answered from. */
export type ReadSource = 'memory' | 'disk' | 'storage';

export type CacheTier = 'memory' | 'disk';

/**
 * Why entries left a tier: `size` to make room, `invalidated` by a purge, `cleared` because
 * invalidations may have been missed.
 */
export type EvictionReason = 'size' | 'invalidated' | 'cleared';

/** Where an invalidation came from: this process's own delete, or the bus (another replica, a worker). */
export type InvalidationOrigin = 'local' | 'bus';

/**
 * What the cache tells about itself, for metrics and logs; every listener is optional and must
 * not throw. Nothing here carries more than a tier, a file kind and a reason, except the
 * failures, whose errors name the version for the log.
 */
export interface ContentCacheEvents {
  /** An info, go.mod or zip read, and where it was answered from (`storage`: a miss). */
  read?(file: CachedFile, source: ReadSource): void;
  /** Bytes that left a tier, and why. */
  evicted?(tier: CacheTier, reason: EvictionReason, bytes: number): void;
  /** A zip copied into a tier (`stored`), or not kept because its version was purged meanwhile. */
  filled?(tier: CacheTier, result: 'stored' | 'discarded', bytes: number): void;
  /** A zip could not be copied (storage failed mid-stream, a size or SHA-256 mismatch, the disk). */
  fillFailed?(tier: CacheTier, error: ModuleError): void;
  /** An invalidation was applied. */
  invalidated?(origin: InvalidationOrigin): void;
  /** Everything was dropped because invalidations may have been missed. */
  cleared?(reason: string): void;
  /**
   * The disk tier's directory is another live process's, or cannot be made or written: this
   * process goes without a disk tier.
   */
  diskTierUnavailable?(reason: string): void;
}
