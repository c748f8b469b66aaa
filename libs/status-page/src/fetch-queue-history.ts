import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { decodeJobFailure, DEFAULT_QUEUE_PREFIX, FETCH_QUEUE, jobContracts } from '@modproxy/queue';
import type { FetchedVersion, FetchFailure } from './status-snapshot';

export interface FetchQueueHistoryOptions {
  /** The queue Redis; shared, not closed here. */
  connection: Redis;
  /** The BullMQ key prefix (QUEUE_PREFIX). @default 'modproxy' */
  prefix?: string;
}

/**
 * What the fetch queue remembers of its recent jobs, for the status page: completed jobs (kept
 * 5 minutes) as fetched versions, failed ones (kept an hour) as failures with the kind and the
 * message the worker failed them with. The operator-only detail never crosses the queue.
 */
export class FetchQueueHistory {
  private readonly queue: Queue;

  constructor(options: FetchQueueHistoryOptions) {
    this.queue = new Queue(FETCH_QUEUE, {
      connection: options.connection,
      prefix: options.prefix ?? DEFAULT_QUEUE_PREFIX,
    });
    // Connection errors surface on the reads that failed.
    this.queue.on('error', () => undefined);
  }

  /** The newest `limit` completed fetch jobs, newest first. */
  async completed(limit: number): Promise<FetchedVersion[]> {
    const jobs = await this.queue.getJobs(['completed'], 0, limit - 1, false);
    return jobs.flatMap((job) => {
      const refs = versionOf(job);
      if (!refs || !job.finishedOn) return [];
      const result = (job.returnvalue as { result?: unknown } | null | undefined)?.result;
      return [
        {
          ...refs,
          at: new Date(job.finishedOn),
          ...(job.processedOn ? { durationMs: Math.max(0, job.finishedOn - job.processedOn) } : {}),
          by: 'fetch queue' as const,
          ...(result === 'fetched' || result === 'already-stored' ? { result } : {}),
        },
      ];
    });
  }

  /** The newest `limit` failed fetch jobs, newest first. */
  async failed(limit: number): Promise<FetchFailure[]> {
    const jobs = await this.queue.getJobs(['failed'], 0, limit - 1, false);
    return jobs.flatMap((job) => {
      const refs = versionOf(job);
      if (!refs) return [];
      const failure = decodeJobFailure(job.failedReason, 'queue.fetch', refs);
      return [
        {
          ...refs,
          kind: failure.kind,
          message: failure.message,
          // Only a reason that is not ours (BullMQ's own, e.g. a job that stalled too often).
          ...(failure.detail ? { detail: failure.detail } : {}),
          at: new Date(job.finishedOn ?? job.timestamp),
          by: 'fetch queue' as const,
          attempts: job.attemptsMade,
        },
      ];
    });
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/** The job's module and version: from its payload, or its id (module@version) when the payload is not valid. */
function versionOf(job: Job): { module: string; version: string } | undefined {
  try {
    const { module, version } = jobContracts.FetchVersion.decode(job.data);
    return { module, version };
  } catch {
    const id = job.id ?? '';
    const at = id.lastIndexOf('@');
    return at > 0 ? { module: id.slice(0, at), version: id.slice(at + 1) } : undefined;
  }
}
