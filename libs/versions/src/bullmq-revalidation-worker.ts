import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { REVALIDATION_QUEUE_NAME, type RevalidationJobData } from './bullmq-revalidation-queue';
import type { Revalidate } from './revalidation-queue';

export interface BullmqRevalidationWorkerOptions {
  /** Connection to the queue Redis; BullMQ duplicates it for its blocking reads. Not closed by the worker. */
  connection: Redis;
  revalidate: Revalidate;
  /** BullMQ key prefix; the producer's. Default: `lathens`. */
  prefix?: string;
  /** Queue name; the producer's. Default: {@link REVALIDATION_QUEUE_NAME}. */
  name?: string;
  /** Jobs run at once by this worker. Default: 8. */
  concurrency?: number;
  /** Told when a revalidation failed (not retried: the next stale request asks again). */
  onError?(module: string, error: unknown): void;
}

/** Runs the revalidation jobs of the shared queue in this process. */
export class BullmqRevalidationWorker {
  readonly worker: Worker<RevalidationJobData>;
  private processed = 0;

  constructor(options: BullmqRevalidationWorkerOptions) {
    this.worker = new Worker<RevalidationJobData>(
      options.name ?? REVALIDATION_QUEUE_NAME,
      async (job) => {
        this.processed += 1;
        await options.revalidate(job.data.module);
      },
      {
        connection: options.connection,
        prefix: options.prefix ?? 'lathens',
        concurrency: options.concurrency ?? 8,
      },
    );
    this.worker.on('failed', (job, error) => options.onError?.(job?.data.module ?? '', error));
    // Connection errors: BullMQ reconnects by itself; readiness is judged from the cache Redis.
    this.worker.on('error', () => undefined);
  }

  /** Jobs this worker has started, for tests and metrics. */
  get processedJobs(): number {
    return this.processed;
  }

  /** Resolves when the worker is connected and taking jobs. */
  async waitUntilReady(): Promise<void> {
    await this.worker.waitUntilReady();
  }

  /** Lets running jobs finish, then stops; with `force`, stops without waiting for them. */
  async close(force = false): Promise<void> {
    await this.worker.close(force);
  }
}
