import { DelayedError, RateLimitError, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { errors, toModuleError, type ModuleError } from '@modproxy/errors';
import { isJobName, jobContracts, type JobMessages, type JobName } from './job-contracts';
import { jobFailureError } from './job-failure';
import { rawTraceContext, tracedProcess } from './job-tracing';
import { DEFAULT_QUEUE_PREFIX, type QueueName } from './queue-names';

/** What a handler gets besides the decoded message. */
export interface JobContext {
  job: Job;
  /** The lock token of this attempt (for `job.moveToDelayed(until, token)`). */
  token: string | undefined;
  /** Aborted when the worker shuts down past its grace period: stop, the job is handed back. */
  signal: AbortSignal;
}

export type JobHandler<N extends JobName, R> = (message: JobMessages[N], context: JobContext) => Promise<R>;

/**
 * Runs around every attempt (per-host limits, metrics): may run `next`, or instead move the job
 * back to delayed (`job.moveToDelayed(until, token)` then `throw new DelayedError()`, which
 * spends no attempt).
 */
export type JobMiddleware = (
  name: JobName,
  message: JobMessages[JobName],
  context: JobContext,
  next: () => Promise<unknown>,
) => Promise<unknown>;

/** How an attempt ended, for metrics and logs. */
export type JobAttemptOutcome = 'completed' | 'retrying' | 'failed' | 'invalid' | 'delayed' | 'handed-back';

export interface JobWorkerEvents {
  /** Every attempt's end; `error` for those that failed. */
  attemptEnded?(name: string, outcome: JobAttemptOutcome, durationMs: number, error?: ModuleError): void;
  /** A job the lock of which expired (its worker died or hung) was put back to run again. */
  stalled?(jobId: string): void;
}

export interface JobWorkerOptions<N extends JobName> {
  queueName: QueueName;
  /** The handler of each job name this worker takes; a job of another name fails as invalid. */
  handlers: { [K in N]: JobHandler<K, unknown> };
  /** Connection to the queue Redis; BullMQ adds a blocking connection of its own. Not closed here. */
  connection: Redis;
  /** BullMQ key prefix; the producers'. Default: `modproxy`. */
  prefix?: string;
  /** Jobs run at once by this worker. Default: 4. */
  concurrency?: number;
  /**
   * How long a job's lock lasts without renewal (renewed every half of it while the job runs):
   * after a worker dies, its job runs again once this has passed. Default: 30000 ms.
   */
  lockDurationMs?: number;
  /** How often expired locks are looked for. Default: 30000 ms. */
  stalledIntervalMs?: number;
  /** A job whose lock expired more often than this fails instead of running again. Default: 2. */
  maxStalledCount?: number;
  /** Wrappers of every attempt, outermost first. Default: none. */
  middleware?: JobMiddleware[];
  events?: JobWorkerEvents;
}

const SHUTDOWN = 'worker shutting down';

/** How long `close` waits for aborted handlers to hand their jobs back before it gives up on them. */
export const HAND_BACK_WAIT_MS = 5_000;

/**
 * A BullMQ worker for jobs.v1 payloads: decodes and validates each job (an invalid one fails at
 * once, unrecoverable), runs its handler inside the middleware, and turns a handler's failure
 * into a failed attempt that carries the ModuleError kind (retried unless another attempt
 * cannot help). `close(graceMs)` lets running jobs finish, and hands back those still running
 * after the grace period (moved back to waiting, no attempt spent) instead of leaving them to
 * the lock's expiry.
 */
export class JobWorker<N extends JobName> {
  readonly worker: Worker;
  private readonly options: JobWorkerOptions<N>;
  private readonly middleware: JobMiddleware[];
  private handingBack = false;
  private runningCount = 0;

  constructor(options: JobWorkerOptions<N>) {
    this.options = options;
    this.middleware = options.middleware ?? [];
    this.worker = new Worker(
      options.queueName,
      (job: Job, token: string | undefined, signal?: AbortSignal) => this.process(job, token, signal),
      {
        connection: options.connection,
        prefix: options.prefix ?? DEFAULT_QUEUE_PREFIX,
        concurrency: options.concurrency ?? 4,
        lockDuration: options.lockDurationMs ?? 30_000,
        stalledInterval: options.stalledIntervalMs ?? 30_000,
        maxStalledCount: options.maxStalledCount ?? 2,
        autorun: false,
      },
    );
    // Connection errors: BullMQ reconnects by itself; readiness is judged from the connection.
    this.worker.on('error', () => undefined);
    this.worker.on('stalled', (jobId) => options.events?.stalled?.(jobId));
  }

  /** Starts taking jobs; resolves once the worker's connections are ready. */
  async start(): Promise<void> {
    void this.worker.run().catch(() => undefined);
    await this.worker.waitUntilReady();
  }

  /** Jobs running in this worker now. */
  get activeJobs(): number {
    return this.runningCount;
  }

  /**
   * Stops taking jobs and waits for the running ones; after `graceMs`, those still running are
   * aborted and handed back to the queue for another worker. A handler that ignores the abort
   * is waited for {@link HAND_BACK_WAIT_MS} more, then left behind: its lock expires and
   * stalled-job recovery runs the job elsewhere. Resolves with how many were handed back or left.
   */
  async close(graceMs: number): Promise<{ handedBack: number }> {
    const closing = this.worker.close();
    let handedBack = 0;
    let giveUp: NodeJS.Timeout | undefined;
    const abandoned = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.handingBack = true;
        handedBack = this.runningCount;
        // Nothing running and still not closed: BullMQ waits for an unreachable Redis.
        if (handedBack === 0) return resolve();
        this.worker.cancelAllJobs(SHUTDOWN);
        giveUp = setTimeout(resolve, HAND_BACK_WAIT_MS);
      }, graceMs);
      const stop = () => clearTimeout(timer);
      closing.then(stop, stop);
    });
    try {
      await Promise.race([closing, abandoned]);
    } finally {
      clearTimeout(giveUp);
    }
    return { handedBack };
  }

  /** One attempt inside a CONSUMER span that continues the producer's trace. */
  private process(job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    const refs = {
      queue: this.options.queueName,
      name: job.name,
      jobId: job.id,
      attempt: job.attemptsMade + 1,
    };
    return tracedProcess(
      refs,
      rawTraceContext(job.data),
      () => this.attempt(job, token, signal),
      (error) =>
        error instanceof DelayedError || error instanceof WaitingError || error instanceof RateLimitError
          ? 'ok'
          : 'error',
    );
  }

  private async attempt(
    job: Job,
    token: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const started = Date.now();
    const ended = (outcome: JobAttemptOutcome, error?: ModuleError) =>
      this.options.events?.attemptEnded?.(job.name, outcome, Date.now() - started, error);
    const name = job.name;
    const handler = isJobName(name)
      ? (this.options.handlers as unknown as Partial<Record<JobName, JobHandler<JobName, unknown>>>)[name]
      : undefined;
    if (!isJobName(name) || !handler) {
      const error = errors.invalidArgument(
        'queue.worker',
        `no handler for job ${JSON.stringify(name)} on this queue`,
      );
      ended('invalid', error);
      throw new UnrecoverableError(jobFailureError(error).message);
    }
    let message: JobMessages[JobName];
    try {
      message = jobContracts[name].decode(job.data);
    } catch (error) {
      const failure = toModuleError(error, 'queue.decode');
      ended('invalid', failure);
      throw new UnrecoverableError(jobFailureError(failure).message);
    }
    const context: JobContext = { job, token, signal: signal ?? new AbortController().signal };
    this.runningCount += 1;
    try {
      let run = () => handler(message, context);
      for (const wrap of [...this.middleware].reverse()) {
        const inner = run;
        run = () => wrap(name, message, context, inner);
      }
      const result = await run();
      ended('completed');
      return result;
    } catch (error) {
      if (error instanceof DelayedError || error instanceof WaitingError || error instanceof RateLimitError) {
        ended('delayed');
        throw error;
      }
      if (this.handingBack && context.signal.aborted) {
        // Back to waiting without spending an attempt; if that fails, the lock expires and
        // stalled-job recovery puts it back all the same.
        await job.moveToWait(token).catch(() => undefined);
        ended('handed-back');
        throw new WaitingError();
      }
      const failure = toModuleError(error, `queue.worker.${name}`);
      const thrown = error instanceof UnrecoverableError ? error : jobFailureError(failure);
      const final = thrown instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      ended(final ? 'failed' : 'retrying', failure);
      throw thrown;
    } finally {
      this.runningCount -= 1;
    }
  }
}
