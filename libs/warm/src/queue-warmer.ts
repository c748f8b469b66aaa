import { isModuleError } from '@modproxy/errors';
import { createQueueRedis, FetchQueue } from '@modproxy/queue';
import type { Redis } from 'ioredis';
import type { WarmEntry } from './warm-entries';
import type { Warmer, WarmOutcome } from './warmer';

export interface QueueWarmerOptions {
  /** The queue Redis crathens works from. */
  redisUrl: string;
  /** BullMQ key prefix, crathens' (QUEUE_PREFIX). @default 'modproxy' */
  prefix?: string;
  /** How long to wait for one version's fetch job. @default 300000 */
  timeoutMs?: number;
  /** Queue the jobs and do not wait for them (every entry is then `queued`). @default false */
  noWait?: boolean;
}

/**
 * Warms by queueing FetchVersion jobs for crathens (the job id is module@version, so a version
 * already queued or being fetched is one job), and by default waits for each: the job's result
 * says whether crathens fetched it or found it stored; a failure keeps its kind and message.
 */
export class QueueWarmer implements Warmer {
  private readonly connection: Redis;
  private readonly queue: FetchQueue;
  private readonly timeoutMs: number;
  private readonly noWait: boolean;

  constructor(options: QueueWarmerOptions) {
    this.connection = createQueueRedis(options.redisUrl, { connectionName: 'modproxy-warm' });
    this.timeoutMs = options.timeoutMs ?? 300_000;
    this.noWait = options.noWait ?? false;
    this.queue = new FetchQueue({
      connection: this.connection,
      ...(options.prefix ? { prefix: options.prefix } : {}),
      waitTimeoutMs: this.timeoutMs,
    });
  }

  /** Resolves once the queue Redis answers; rejects (rather than waiting for ever) when it does not. */
  async ready(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer from the queue Redis within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.connection.ping(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async warm(entry: WarmEntry, signal: AbortSignal): Promise<WarmOutcome> {
    try {
      if (this.noWait) {
        await this.queue.add(entry.module, entry.version);
        return { result: 'queued' };
      }
      const { result } = await this.queue.fetchAndWait(entry.module, entry.version, {
        signal,
        timeoutMs: this.timeoutMs,
      });
      return { result: result === 'already-stored' ? 'already-there' : 'fetched' };
    } catch (error) {
      const reason = isModuleError(error) ? `${error.kind}: ${error.message}` : String(error);
      return { result: 'failed', reason };
    }
  }

  async close(): Promise<void> {
    if (this.connection.status !== 'ready') {
      // Never connected (or lost): closing the queue would wait for Redis to come back.
      this.connection.disconnect();
      return;
    }
    await this.queue.close();
    await this.connection.quit().catch(() => undefined);
  }
}
