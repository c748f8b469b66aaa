import type { Redis } from 'ioredis';

export interface CloseQueueConnectionOptions {
  /**
   * Closes what runs on the connection (workers, queues, event readers): politely, running jobs
   * finishing and pending writes answered, or with `force` when the connection is not ready
   * (nothing could be written: a BullMQ worker's `close(true)` then stops without waiting).
   * Default: nothing.
   */
  closeClients?: (force: boolean) => Promise<void>;
  /** Longest wait for `closeClients` and QUIT while the queue Redis answers. @default 5000 */
  graceMs?: number;
}

/**
 * Closes a queue Redis connection (see `createQueueRedis`) and what runs on it, without ever
 * waiting for a Redis that is not there. Its commands wait for a reconnection that may never
 * come (unreachable, a wrong password: ioredis retries without end), a BullMQ worker's close
 * waits for its loop, and QUIT waits behind every queued command: so the polite close gets
 * `graceMs` while the connection is ready and none at all when it is not, then the connection
 * is dropped (what was still queued on it is rejected). Resolves with whether the polite close
 * finished in time; never rejects.
 */
export async function closeQueueConnection(
  connection: Redis,
  options: CloseQueueConnectionOptions = {},
): Promise<boolean> {
  const ready = connection.status === 'ready';
  const graceMs = ready ? (options.graceMs ?? 5_000) : 0;
  const polite = (async () => {
    await options.closeClients?.(!ready);
    await connection.quit();
  })().then(
    () => true,
    () => false,
  );
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
  });
  try {
    return await Promise.race([polite, gaveUp]);
  } finally {
    clearTimeout(timer);
    connection.disconnect();
  }
}
