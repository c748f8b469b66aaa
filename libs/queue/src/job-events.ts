import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import { QueueEvents, type RedisOptions } from 'bullmq';
import type { Redis } from 'ioredis';

/** How a job ended, as its queue's event stream tells it. */
export type JobOutcome =
  { state: 'completed'; returnvalue: unknown } | { state: 'failed'; failedReason: string };

interface Watcher {
  ended(outcome: JobOutcome): void;
  requeued(): void;
}

export interface JobEventsOptions {
  /**
   * Connection to the queue Redis, not closed here; the blocking reads get a connection of
   * their own with the same options.
   */
  connection: Redis;
  prefix: string;
  queueName: string;
  /** How long one blocking read of the event stream waits. Default: 10000 ms. */
  blockingTimeoutMs?: number;
}

/**
 * The end of jobs of one queue, for everyone in this process who waits for one: a single
 * BullMQ QueueEvents (one blocking connection) however many wait, with the outcome handed to
 * the waiters of that job id. Reading starts at the stream's last entry as it was before the
 * first watch, so an event written while QueueEvents connects is not missed.
 */
export class JobEvents {
  private readonly options: JobEventsOptions;
  private readonly watchers = new Map<string, Set<Watcher>>();
  private events: QueueEvents | undefined;
  private starting: Promise<QueueEvents> | undefined;
  private closed = false;

  constructor(options: JobEventsOptions) {
    this.options = options;
  }

  /**
   * Waits for the end of `jobId`; `stop()` when no longer interested. Call {@link ready} first.
   * `requeued` is told each time the job goes back to the queue without ending (delayed or
   * waiting again: an attempt failed and waits for its retry, a host limit put it off, a stalled
   * or handed-back job); the caller reads the job to tell which.
   */
  watch(jobId: string, requeued?: () => void): { outcome: Promise<JobOutcome>; stop(): void } {
    let notify: (outcome: JobOutcome) => void = () => undefined;
    const outcome = new Promise<JobOutcome>((resolve) => {
      notify = resolve;
    });
    const watcher: Watcher = { ended: notify, requeued: requeued ?? (() => undefined) };
    let set = this.watchers.get(jobId);
    if (!set) {
      set = new Set();
      this.watchers.set(jobId, set);
    }
    set.add(watcher);
    return {
      outcome,
      stop: () => {
        const current = this.watchers.get(jobId);
        current?.delete(watcher);
        if (current?.size === 0) this.watchers.delete(jobId);
      },
    };
  }

  /** Jobs someone waits for, for metrics. */
  get watchedJobs(): number {
    return this.watchers.size;
  }

  /**
   * Resolves once events are being read; starts reading on the first call. A start that failed
   * (the queue Redis refused the connection, a command gave up) is not remembered: every caller
   * waiting on it gets its error, and the next call starts again, so the reader comes back with
   * Redis instead of failing every later wait.
   */
  async ready(): Promise<void> {
    if (this.closed) throw new Error('job events are closed');
    // Outside the caller's trace: the reader lives on, and its blocking reads belong to no request.
    const starting = (this.starting ??= context.with(ROOT_CONTEXT, () => this.start()));
    try {
      await starting;
    } catch (error) {
      if (this.starting === starting) this.starting = undefined;
      throw error;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchers.clear();
    // A start still waiting for a queue Redis that is away must not hold close up: the reader
    // it opens is closed as soon as it is there.
    if (this.events) await this.events.close();
    else
      void this.starting?.then(
        (events) => events.close(),
        () => undefined,
      );
  }

  private async start(): Promise<QueueEvents> {
    const { connection, prefix, queueName } = this.options;
    const streamKey = `${prefix}:${queueName}:events`;
    const last = (await connection.xrevrange(streamKey, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    if (this.closed) throw new Error('job events are closed');
    const events = new QueueEvents(queueName, {
      connection: { ...connection.options } as RedisOptions,
      prefix,
      lastEventId: last[0]?.[0] ?? '0-0',
      blockingTimeout: this.options.blockingTimeoutMs ?? 10_000,
    });
    this.events = events;
    // Connection errors: QueueEvents reconnects and goes on from its last id.
    events.on('error', () => undefined);
    events.on('completed', ({ jobId, returnvalue }) =>
      this.dispatch(jobId, { state: 'completed', returnvalue }),
    );
    events.on('failed', ({ jobId, failedReason }) => this.dispatch(jobId, { state: 'failed', failedReason }));
    // A failed attempt with a backoff is `delayed`, without one `waiting` (BullMQ's retryJob).
    events.on('delayed', ({ jobId }) => this.requeued(jobId));
    events.on('waiting', ({ jobId, prev }) => prev === 'active' && this.requeued(jobId));
    try {
      await events.waitUntilReady();
    } catch (error) {
      // The next start makes a reader of its own: this one must not read on beside it.
      if (this.events === events) this.events = undefined;
      await events.close().catch(() => undefined);
      throw error;
    }
    return events;
  }

  private dispatch(jobId: string, outcome: JobOutcome): void {
    const set = this.watchers.get(jobId);
    if (!set) return;
    this.watchers.delete(jobId);
    for (const watcher of set) watcher.ended(outcome);
  }

  private requeued(jobId: string): void {
    for (const watcher of this.watchers.get(jobId) ?? []) watcher.requeued();
  }
}
