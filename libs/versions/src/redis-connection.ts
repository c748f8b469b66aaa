import { Redis, type RedisOptions } from 'ioredis';
import { errors } from '@modproxy/errors';

export interface RedisConnectionOptions {
  /**
   * Longest wait for one command's answer; a hung server then counts as down. Default: 2000.
   * (Ignored for BullMQ connections, whose blocking commands wait on purpose.)
   */
  commandTimeoutMs?: number;
  /** Longest pause between reconnection attempts. Default: 1000. */
  maxReconnectDelayMs?: number;
  /** Name shown by CLIENT LIST, to tell the connections apart. */
  connectionName?: string;
}

/**
 * A Redis connection for the version cache: commands fail at once while the server is
 * unreachable (no offline queue, one attempt), so callers fall back to answering without the
 * cache instead of waiting; reconnection goes on in the background for as long as it takes.
 */
export function createCacheRedis(url: string, options: RedisConnectionOptions = {}): Redis {
  const maxDelay = options.maxReconnectDelayMs ?? 1_000;
  const redisOptions: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 2_000,
    retryStrategy: (attempt) => Math.min(attempt * 50, maxDelay),
    ...(options.connectionName ? { connectionName: options.connectionName } : {}),
  };
  const redis = new Redis(url, redisOptions);
  // Without a listener, ioredis reports connection errors as unhandled; health is read from `status`.
  redis.on('error', () => undefined);
  redis.connect().catch(() => undefined);
  return redis;
}

// The BullMQ connection lives with the queues, where lathens and crathens both find it.
export { createQueueRedis } from '@modproxy/queue';

/** Resolves once the connection is ready; `unavailable` after `timeoutMs`. */
export async function waitForRedis(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(
        errors.unavailable(
          'versions.redis',
          `Redis not ready after ${timeoutMs} ms (status ${redis.status})`,
        ),
      );
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}
