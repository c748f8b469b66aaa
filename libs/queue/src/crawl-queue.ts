import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { jobsV1 } from '@modproxy/contracts';
import { jobContracts, type TraceContext } from './job-contracts';
import { crawlJobId, refreshJobId } from './job-ids';
import { tracedAdd } from './job-tracing';
import { CRAWL_JOB_OPTIONS } from './job-options';
import { CRAWL_QUEUE, DEFAULT_QUEUE_PREFIX } from './queue-names';

export interface CrawlQueueOptions {
  /** Connection to the queue Redis (see `createQueueRedis`); not closed by the queue. */
  connection: Redis;
  /** BullMQ key prefix; the workers'. Default: `modproxy`. */
  prefix?: string;
  /** Options of every job added. Default: {@link CRAWL_JOB_OPTIONS}. */
  jobOptions?: JobsOptions;
}

export interface CrawlRequestOptions {
  traceContext?: TraceContext;
  /** Run no earlier than this many milliseconds from now (schedulers spread a pass with it). */
  delayMs?: number;
}

/**
 * Producer side of the crawl queue: CrawlModule and RefreshList jobs, one waiting job per module
 * and kind (an add while one waits or runs is a no-op).
 */
export class CrawlQueue {
  readonly queue: Queue;
  private readonly jobOptions: JobsOptions;

  constructor(options: CrawlQueueOptions) {
    this.queue = new Queue(CRAWL_QUEUE, {
      connection: options.connection,
      prefix: options.prefix ?? DEFAULT_QUEUE_PREFIX,
    });
    this.queue.on('error', () => undefined);
    this.jobOptions = options.jobOptions ?? CRAWL_JOB_OPTIONS;
  }

  async crawlModule(
    module: string,
    reason: jobsV1.CrawlReason,
    options: CrawlRequestOptions = {},
  ): Promise<void> {
    const jobId = crawlJobId(module);
    const refs = { queue: CRAWL_QUEUE, name: jobContracts.CrawlModule.name, jobId };
    await tracedAdd(refs, options.traceContext, async (traceContext) => {
      const data = jobContracts.CrawlModule.encode({ module, reason, traceContext });
      await this.queue.add(jobContracts.CrawlModule.name, data, {
        ...this.jobOptions,
        jobId,
        ...(options.delayMs ? { delay: options.delayMs } : {}),
      });
    });
  }

  async refreshList(module: string, options: CrawlRequestOptions = {}): Promise<void> {
    const jobId = refreshJobId(module);
    const refs = { queue: CRAWL_QUEUE, name: jobContracts.RefreshList.name, jobId };
    await tracedAdd(refs, options.traceContext, async (traceContext) => {
      const data = jobContracts.RefreshList.encode({ module, traceContext });
      await this.queue.add(jobContracts.RefreshList.name, data, {
        ...this.jobOptions,
        jobId,
        ...(options.delayMs ? { delay: options.delayMs } : {}),
      });
    });
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
