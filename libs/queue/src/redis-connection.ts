import { Redis } from 'ioredis';

export interface QueueRedisOptions {
  /** Longest pause between reconnection attempts. Default: 1000. */
  maxReconnectDelayMs?: number;
  /** Name shown by CLIENT LIST, to tell the connections apart. */
  connectionName?: string;
}

/**
 * A Redis connection for BullMQ: commands wait for a reconnection instead of failing
 * (`maxRetriesPerRequest: null`, as BullMQ requires for its blocking commands). The server must
 * not evict keys (`maxmemory-policy noeviction`): an evicted job is a lost request.
 */
export function createQueueRedis(url: string, options: QueueRedisOptions = {}): Redis {
  const maxDelay = options.maxReconnectDelayMs ?? 1_000;
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(attempt * 50, maxDelay),
    ...(options.connectionName ? { connectionName: options.connectionName } : {}),
  });
  // Without a listener, ioredis reports connection errors as unhandled; health is read from `status`.
  redis.on('error', () => undefined);
  return redis;
}

/**
 * Whether a connection error is Redis refusing the credentials of its URL (`WRONGPASS`, `NOAUTH`,
 * Redis < 6's `invalid password`): ioredis keeps retrying, as it should (the password may be
 * mended on either side), but only an operator can mend it, so it is worth saying apart from a
 * Redis that is down. The message carries no secret.
 */
export function refusesCredentials(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /^(WRONGPASS|NOAUTH)\b|^ERR invalid password/.test(message);
}
