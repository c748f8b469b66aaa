import type { ModuleVersionRef } from '@modproxy/storage';

/** What a replica's cache does with an invalidation it hears of. */
export interface InvalidationListener {
  /** Drop everything held for module@version. */
  invalidate(ref: ModuleVersionRef): void;
  /** Some invalidations may have been missed (a gap in the record): drop everything. */
  invalidateAll(): void;
}

/**
 * How a purge reaches every replica's cache: the embedded default's one process
 * ({@link LocalInvalidationBus}), the workers of one node:cluster primary
 * (`ClusterInvalidationBus`), or every replica of the production shape through the queue Redis
 * (`RedisInvalidationBus`).
 */
export interface InvalidationBus {
  /** Tells every subscribed cache, this process's included, to drop module@version. */
  publish(ref: ModuleVersionRef): Promise<void>;
  /** Starts delivering invalidations to `listener` (one listener per bus). */
  subscribe(listener: InvalidationListener): Promise<void>;
  close(): Promise<void>;
}

/**
 * The bus of a single process: what is published is delivered here at once. It keeps no record,
 * so a cache that outlived the process (a disk tier) cannot know what was purged meanwhile: it
 * starts empty.
 */
export class LocalInvalidationBus implements InvalidationBus {
  private listener: InvalidationListener | undefined;

  async publish(ref: ModuleVersionRef): Promise<void> {
    this.listener?.invalidate({ module: ref.module, version: ref.version });
  }

  async subscribe(listener: InvalidationListener): Promise<void> {
    this.listener = listener;
    listener.invalidateAll();
  }

  async close(): Promise<void> {
    this.listener = undefined;
  }
}
