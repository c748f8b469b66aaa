import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RevalidationQueue } from './revalidation-queue';

/** The queue lathens replicas share; producer and worker must agree on name and prefix. */
export const REVALIDATION_QUEUE_NAME = 'lathens-revalidate';

export interface RevalidationJobData {
  module: string;
}

export interface BullmqRevalidationQueueOptions {
  /**
   * Connection to the queue Redis (see `createQueueRedis`: `maxRetriesPerRequest: null`). It
   * must not evict keys (`maxmemory-policy noeviction`). Not closed by the queue.
   */
  connection: Redis;
  /** BullMQ key prefix. Default: `lathens`. */
  prefix?: string;
  /** Queue name. Default: {@link REVALIDATION_QUEUE_NAME}. */
  name?: string;
}

/**
 * Revalidation requests as BullMQ jobs whose id is the module path: adding a job while one
 * with that id waits or runs is a no-op, so the queue deduplicates by module across replicas.
 * Finished jobs are removed at once, which frees the id for the next stale period.
 */
export class BullmqRevalidationQueue implements RevalidationQueue {
  readonly queue: Queue<RevalidationJobData>;

  constructor(options: BullmqRevalidationQueueOptions) {
    this.queue = new Queue<RevalidationJobData>(options.name ?? REVALIDATION_QUEUE_NAME, {
      connection: options.connection,
      prefix: options.prefix ?? 'lathens',
      defaultJobOptions: { removeOnComplete: true, removeOnFail: true, attempts: 1 },
    });
    // Connection errors surface on the calls that failed; nothing to add here.
    this.queue.on('error', () => undefined);
  }

  async enqueue(module: string): Promise<void> {
    await this.queue.add('revalidate', { module }, { jobId: module });
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
