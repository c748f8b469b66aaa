import type { JobType, Queue } from 'bullmq';

export interface QueueDepthReaderOptions {
  /** Longest wait for the counts; past it a read answers `undefined`. @default 1000 */
  deadlineMs?: number;
}

/**
 * Reads a queue's job counts by state for `/metrics`, at scrape time, without a scrape ever
 * waiting on a queue Redis that is not there. A queue's commands wait for a connection that
 * may never come (unreachable, a wrong password: the queue connection retries without end and
 * has no offline limit), and a `/metrics` that never answers hides every other metric, the ones
 * saying Redis is down included. So a read answers `undefined` after `deadlineMs`, and at most
 * one read is in flight: scrapes during an outage share the one still waiting instead of piling
 * up commands to run when Redis is back.
 */
export class QueueDepthReader<S extends JobType> {
  private readonly deadlineMs: number;
  private inFlight: Promise<Record<string, number> | undefined> | undefined;

  constructor(
    private readonly queue: Queue,
    private readonly states: readonly S[],
    options: QueueDepthReaderOptions = {},
  ) {
    this.deadlineMs = options.deadlineMs ?? 1_000;
  }

  /** The queue's name (a metric label). */
  get name(): string {
    return this.queue.name;
  }

  /** The count of every state (0 when Redis has none), or `undefined` when Redis did not answer in time. */
  async read(): Promise<Record<S, number> | undefined> {
    this.inFlight ??= this.queue
      .getJobCounts(...this.states)
      .catch(() => undefined)
      .finally(() => {
        this.inFlight = undefined;
      });
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.deadlineMs);
    });
    try {
      const counts = await Promise.race([this.inFlight, gaveUp]);
      if (!counts) return undefined;
      const out = {} as Record<S, number>;
      for (const state of this.states) out[state] = counts[state] ?? 0;
      return out;
    } finally {
      clearTimeout(timer);
    }
  }
}
