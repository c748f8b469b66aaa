import { Queue, Worker, type JobSchedulerJson } from 'bullmq';
import type { Redis } from 'ioredis';
import { DEFAULT_QUEUE_PREFIX } from './queue-names';

/** The queue the crawl schedulers' ticks run on (not jobs.v1 payloads: a tick carries nothing). */
export const SCHEDULE_QUEUE = 'crawl-schedule';
/** Every CRAWL_INTERVAL_MS: a crawl of every module in the catalog, spread over the jitter. */
export const CRAWL_CATALOG_SCHEDULER = 'crawl-catalog';
/** Every RECENT_CRAWL_INTERVAL_MS: a crawl of the modules clients asked for recently. */
export const CRAWL_RECENT_SCHEDULER = 'crawl-recent';

export type CrawlSchedulerId = typeof CRAWL_CATALOG_SCHEDULER | typeof CRAWL_RECENT_SCHEDULER;

export interface CrawlSchedulersOptions {
  /** The queue Redis; not closed here. */
  connection: Redis;
  /** @default 'modproxy' */
  prefix?: string;
  catalogIntervalMs: number;
  recentIntervalMs: number;
  /** What a crawl-catalog tick does (queue CrawlModule jobs); resolves with how many were queued. */
  crawlCatalog(signal: AbortSignal): Promise<number>;
  /** What a crawl-recent tick does. */
  crawlRecent(signal: AbortSignal): Promise<number>;
  /** Told after each tick. */
  onTick?(scheduler: CrawlSchedulerId, queued: number, durationMs: number): void;
  onTickFailed?(scheduler: CrawlSchedulerId, error: unknown): void;
  /** A tick's lock (renewed while it runs); a dead process's tick runs again after it. @default 30000 */
  lockDurationMs?: number;
}

/**
 * The crawl's two BullMQ job schedulers. `start` upserts them by fixed ids, so however many
 * crathens processes start, and however often, there is one scheduler of each kind (a changed
 * interval replaces the old one), and every process runs ticks as they come, one at a time.
 */
export class CrawlSchedulers {
  readonly queue: Queue;
  private readonly worker: Worker;

  constructor(private readonly options: CrawlSchedulersOptions) {
    const prefix = options.prefix ?? DEFAULT_QUEUE_PREFIX;
    this.queue = new Queue(SCHEDULE_QUEUE, { connection: options.connection, prefix });
    this.queue.on('error', () => undefined);
    this.worker = new Worker(
      SCHEDULE_QUEUE,
      async (job, _token, signal) => {
        const scheduler = job.name as CrawlSchedulerId;
        const tick = scheduler === CRAWL_CATALOG_SCHEDULER ? options.crawlCatalog : options.crawlRecent;
        const started = Date.now();
        try {
          const queued = await tick(signal ?? new AbortController().signal);
          options.onTick?.(scheduler, queued, Date.now() - started);
          return { queued };
        } catch (error) {
          options.onTickFailed?.(scheduler, error);
          throw error;
        }
      },
      {
        connection: options.connection,
        prefix,
        concurrency: 1,
        autorun: false,
        lockDuration: options.lockDurationMs ?? 30_000,
      },
    );
    this.worker.on('error', () => undefined);
  }

  /** Upserts both schedulers and starts taking ticks. */
  async start(): Promise<void> {
    const template = (name: CrawlSchedulerId) => ({
      name,
      data: {},
      // A failed tick is not retried: the next one comes at its interval.
      opts: { attempts: 1, removeOnComplete: true, removeOnFail: { count: 100 } },
    });
    await this.queue.upsertJobScheduler(
      CRAWL_CATALOG_SCHEDULER,
      { every: this.options.catalogIntervalMs },
      template(CRAWL_CATALOG_SCHEDULER),
    );
    await this.queue.upsertJobScheduler(
      CRAWL_RECENT_SCHEDULER,
      { every: this.options.recentIntervalMs },
      template(CRAWL_RECENT_SCHEDULER),
    );
    void this.worker.run().catch(() => undefined);
    await this.worker.waitUntilReady();
  }

  /** The schedulers as Redis holds them (for tests and the status page). */
  async schedulers(): Promise<JobSchedulerJson[]> {
    return this.queue.getJobSchedulers(0, -1, true);
  }

  /** Stops taking ticks (a running one finishes); the schedulers stay for the other processes. */
  async close(): Promise<void> {
    await this.worker.close();
    await this.queue.close();
  }
}
