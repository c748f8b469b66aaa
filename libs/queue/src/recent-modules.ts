import type { Redis } from 'ioredis';
import { DEFAULT_QUEUE_PREFIX } from './queue-names';

export interface RecentModulesOptions {
  /** The queue Redis (or any that keeps keys); not closed here. */
  redis: Redis;
  /** Key prefix, the BullMQ one. @default 'modproxy' */
  prefix?: string;
  /** A module touched again within this is not written again (by this process). @default 60000 */
  debounceMs?: number;
  /** Touches are written in one batch this often. @default 1000 */
  flushIntervalMs?: number;
  /** Modules not touched for this long are dropped. @default 7 days */
  maxAgeMs?: number;
  /** The most modules kept (the least recent go first). @default 100000 */
  maxModules?: number;
  /**
   * How long {@link RecentModules.close} waits for the last batch; a Redis that is away does not
   * answer, and shutdown must not wait for it. @default 2000
   */
  closeTimeoutMs?: number;
  /** Told when a batch could not be written (it is dropped: the next touch writes again). */
  onError?(error: unknown): void;
  /** @default Date.now */
  now?: () => number;
}

/** Modules remembered as debounced in one process; past this, the memory starts over. */
const MAX_REMEMBERED = 50_000;

/**
 * The modules clients asked for recently, shared through Redis (a sorted set of module → last
 * request time), so crawls can visit them more often than the cold rest of the catalog. A
 * proxy touches a module on list, latest and misses; touches are debounced and batched in
 * process, so a hot module costs Redis one write per debounce period per process.
 */
export class RecentModules {
  private readonly redis: Redis;
  private readonly key: string;
  private readonly debounceMs: number;
  private readonly maxAgeMs: number;
  private readonly maxModules: number;
  private readonly now: () => number;
  private readonly written = new Map<string, number>();
  private pending = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;

  constructor(private readonly options: RecentModulesOptions) {
    this.redis = options.redis;
    this.key = `${options.prefix ?? DEFAULT_QUEUE_PREFIX}:recent-modules`;
    this.debounceMs = options.debounceMs ?? 60_000;
    this.maxAgeMs = options.maxAgeMs ?? 7 * 24 * 3_600_000;
    this.maxModules = Math.max(1, options.maxModules ?? 100_000);
    this.now = options.now ?? Date.now;
    this.timer = setInterval(() => void this.flush(), options.flushIntervalMs ?? 1_000);
    this.timer.unref();
  }

  /** Records that a client asked for `module` now. Never throws, never waits. */
  touch(module: string): void {
    const now = this.now();
    const last = this.written.get(module);
    if (last !== undefined && now - last < this.debounceMs) return;
    if (this.written.size >= MAX_REMEMBERED) this.written.clear();
    this.written.set(module, now);
    this.pending.set(module, now);
  }

  /** Writes the pending touches now (and trims the set by age and size). */
  async flush(): Promise<void> {
    await this.flushing;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const members: Array<string | number> = [];
    for (const [module, at] of batch) members.push(at, module);
    const now = this.now();
    this.flushing = this.redis
      .multi()
      .zadd(this.key, 'GT', ...members)
      .zremrangebyscore(this.key, '-inf', now - this.maxAgeMs)
      .zremrangebyrank(this.key, 0, -this.maxModules - 1)
      .exec()
      .then(() => undefined)
      .catch((error: unknown) => {
        // A lost batch is a module crawled at its cold rate a little longer; forget we wrote it.
        for (const module of batch.keys()) this.written.delete(module);
        this.options.onError?.(error);
      });
    await this.flushing;
  }

  /** Modules touched at or after `since`, most recent first, at most `limit`. */
  async since(since: Date | number, limit = 10_000): Promise<string[]> {
    const from = typeof since === 'number' ? since : since.getTime();
    return this.redis.zrevrangebyscore(this.key, '+inf', from, 'LIMIT', 0, limit);
  }

  /** Modules kept now. */
  async size(): Promise<number> {
    return this.redis.zcard(this.key);
  }

  /**
   * Stops the batch timer after writing what is pending, waiting at most `closeTimeoutMs`: the
   * connection waits for a Redis that is away for ever, so past it the batch is dropped (and
   * `onError` told).
   */
  async close(): Promise<void> {
    clearInterval(this.timer);
    const timeoutMs = this.options.closeTimeoutMs ?? 2_000;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const written = await Promise.race([this.flush().then(() => true), gaveUp]);
    clearTimeout(timer);
    if (!written) {
      this.options.onError?.(
        new Error(
          `recently requested modules not written within ${timeoutMs} ms: the queue Redis did not answer`,
        ),
      );
    }
  }
}
