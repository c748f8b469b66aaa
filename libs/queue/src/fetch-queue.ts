import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { errors, isModuleError, ModuleError, toModuleError } from '@modproxy/errors';
import { jobContracts, type TraceContext } from './job-contracts';
import { tracedAdd } from './job-tracing';
import { JobEvents, type JobOutcome } from './job-events';
import { decodeJobFailure, isEncodedJobFailure } from './job-failure';
import { fetchJobId } from './job-ids';
import { FETCH_JOB_OPTIONS } from './job-options';
import { DEFAULT_QUEUE_PREFIX, FETCH_QUEUE } from './queue-names';

/** What a FetchVersion job returns: whether it fetched, or found the version already stored. */
export interface FetchResult {
  result: 'fetched' | 'already-stored';
}

export interface FetchQueueOptions {
  /**
   * Connection to the queue Redis (see `createQueueRedis`); not closed by the queue. It must not
   * evict keys (`maxmemory-policy noeviction`).
   */
  connection: Redis;
  /** BullMQ key prefix; the workers'. Default: `modproxy`. */
  prefix?: string;
  /** Options of every job added. Default: {@link FETCH_JOB_OPTIONS}. */
  jobOptions?: JobsOptions;
  /** How long {@link FetchQueue.fetchAndWait} waits when the caller gives no deadline. Default: 300000 ms. */
  waitTimeoutMs?: number;
  /**
   * While waiting, how often the job's state is read as well, in case its end was not seen on
   * the event stream (Redis restarted, the stream was trimmed). Default: 5000 ms.
   */
  pollIntervalMs?: number;
}

export interface FetchRequestOptions {
  /**
   * W3C trace context of the request that wants the version. Default: the active span's (the
   * add's PRODUCER span is its child either way, and the job carries that span's context).
   */
  traceContext?: TraceContext;
  /** When the version was first asked for. Default: now. */
  requestedAt?: Date;
  /**
   * Hex SHA-256 of the go.mod already served for this version before its zip was verified: the
   * worker stores nothing whose zip has another. Only the job's first add carries it (a job
   * already queued keeps its own). Default: none.
   */
  goModSha256?: string;
}

export interface FetchWaitOptions extends FetchRequestOptions {
  /** The caller went away: stop waiting (the job goes on for everyone else). */
  signal?: AbortSignal;
  /** Our deadline; when it passes, `timeout`, or the last attempt's failure if there was one. */
  timeoutMs?: number;
}

/**
 * What a waiter is answered with: the job's end, or the failure of its last attempt while it
 * waits for a retry (the retries go on without the waiter).
 */
type WaitEnd = JobOutcome | { state: 'retrying'; failedReason: string };

/** Where the job stood when {@link FetchQueue.add} left it. */
export interface AddedFetch {
  jobId: string;
  state: string;
}

const OP = 'queue.fetch';

/** How long before a wait's deadline the job's last failure is looked up (at most half the wait). */
const DEADLINE_LOOKUP_MS = 1_000;

/**
 * Producer side of the fetch queue, shared by every replica: `add` queues a FetchVersion job
 * whose id is module@version (every replica's add of one version is one job), and
 * `fetchAndWait` also waits for that job to end, the way a proxy's sync miss does. Failures come
 * back as the ModuleError the worker failed with, so not-found stays not-found. A waiter does not
 * sit through the job's retries: the first failed attempt answers it, and the job goes on
 * retrying for whoever asks next. A failed job is never an answer to a later request: the next
 * add retries it.
 *
 * `fetch(module, version, { signal })` and `enqueue(module, version)` have the shapes of a
 * fetcher for ModuleService's miss path (sync and async download modes).
 */
export class FetchQueue {
  readonly queue: Queue;
  private readonly connection: Redis;
  private readonly events: JobEvents;
  private readonly jobOptions: JobsOptions;
  private readonly waitTimeoutMs: number;
  private readonly pollIntervalMs: number;
  private waiting = 0;

  constructor(options: FetchQueueOptions) {
    const prefix = options.prefix ?? DEFAULT_QUEUE_PREFIX;
    this.connection = options.connection;
    this.queue = new Queue(FETCH_QUEUE, { connection: options.connection, prefix });
    // Connection errors surface on the calls that failed.
    this.queue.on('error', () => undefined);
    this.events = new JobEvents({ connection: options.connection, prefix, queueName: FETCH_QUEUE });
    this.jobOptions = options.jobOptions ?? FETCH_JOB_OPTIONS;
    this.waitTimeoutMs = options.waitTimeoutMs ?? 300_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 5_000;
  }

  /** Callers waiting in {@link fetchAndWait} right now, for metrics. */
  get waiters(): number {
    return this.waiting;
  }

  /**
   * Queues the fetch of module@version unless a job for it waits, runs or has just completed;
   * a job that failed is retried (with fresh attempts). `invalid-argument` for a malformed
   * module path or a version that is not canonical.
   */
  async add(module: string, version: string, options: FetchRequestOptions = {}): Promise<AddedFetch> {
    const jobId = fetchJobId(module, version);
    const refs = { queue: FETCH_QUEUE, name: jobContracts.FetchVersion.name, jobId };
    // The job carries the producer span's context, so the worker's span joins the request's trace.
    return tracedAdd(refs, options.traceContext, async (traceContext) => {
      const data = jobContracts.FetchVersion.encode({
        module,
        version,
        requestedAt: options.requestedAt ?? new Date(),
        goModSha256: options.goModSha256 ?? '',
        traceContext,
      });
      try {
        // Twice at most: a completed job may age out between our add and our look.
        for (let round = 0; ; round++) {
          await this.queue.add(jobContracts.FetchVersion.name, data, { ...this.jobOptions, jobId });
          const state = await this.queue.getJobState(jobId);
          if (state === 'failed') return { jobId, state: await this.retryFailed(jobId) };
          if (state !== 'unknown' || round > 0) return { jobId, state };
        }
      } catch (error) {
        throw queueError(error, 'could not queue the fetch', module, version);
      }
    });
  }

  /** `add` for the async download mode: queue it, never wait. */
  async enqueue(module: string, version: string, options: FetchRequestOptions = {}): Promise<void> {
    await this.add(module, version, options);
  }

  /** `fetchAndWait` for the sync download mode, when only success matters. */
  async fetch(module: string, version: string, options: FetchWaitOptions = {}): Promise<void> {
    await this.fetchAndWait(module, version, options);
  }

  /**
   * Queues the fetch (deduplicated as `add` does) and waits for the job to end: resolves when it
   * completed (also when it had completed before we asked); rejects with the ModuleError of its
   * failure, or of its last attempt's as soon as an attempt fails and the job waits for a retry
   * (also when it already waited for one when we asked), with `timeout` at our deadline, or with
   * the signal's reason when the caller leaves. Neither leaving nor an early answer cancels the
   * job or its retries: a retry that succeeds stores the version for the next request.
   */
  async fetchAndWait(module: string, version: string, options: FetchWaitOptions = {}): Promise<FetchResult> {
    const refs = { module, version };
    const timeoutMs = options.timeoutMs ?? this.waitTimeoutMs;
    if (options.signal?.aborted) throw toModuleError(options.signal.reason, OP, refs);
    const jobId = fetchJobId(module, version);
    this.waiting += 1;
    const cleanups: Array<() => void> = [() => (this.waiting -= 1)];
    // Set once the wait is over: what resolves later (Redis came back) starts nothing more.
    let settled = false;
    try {
      const outcome = await new Promise<WaitEnd>((resolve, reject) => {
        // The caller's signal and our deadline cover the whole call: the start of the event
        // reader and the add wait for a queue Redis that may be away (its commands wait for a
        // reconnection for ever).
        const signal = options.signal;
        if (signal) {
          const onAbort = () => reject(toModuleError(signal.reason, OP, refs));
          signal.addEventListener('abort', onAbort, { once: true });
          cleanups.push(() => signal.removeEventListener('abort', onAbort));
          if (signal.aborted) onAbort();
        }
        // The last attempt's failure says more than "timeout": it is looked up just before the
        // deadline, so the answer comes at the deadline however slow Redis is.
        let lastFailure: ModuleError | undefined;
        const lookup = setTimeout(
          () =>
            void this.lastAttemptFailure(jobId, refs).then((failure) => {
              lastFailure = failure;
            }),
          Math.max(0, timeoutMs - Math.min(DEADLINE_LOOKUP_MS, timeoutMs / 2)),
        );
        const timer = setTimeout(
          () =>
            reject(
              lastFailure ??
                errors.timeout(OP, `${module}@${version}: not fetched within ${timeoutMs} ms`, refs),
            ),
          timeoutMs,
        );
        cleanups.push(
          () => clearTimeout(lookup),
          () => clearTimeout(timer),
        );
        this.events.ready().then(
          () => {
            if (settled) return;
            // Back in the queue: a failed attempt now waits for its retry (answer with its
            // failure), or a host limit put the job off (go on waiting).
            const requeued = () =>
              void this.outcomeOf(jobId).then(
                (ended) => ended && resolve(ended),
                () => undefined,
              );
            // Watch before adding, so an end that comes right after the add is seen.
            const watch = this.events.watch(jobId, requeued);
            cleanups.push(watch.stop);
            void watch.outcome.then(resolve);
            this.add(module, version, options).then((added) => {
              if (settled) return;
              // Ended before we watched (completed, or failed and retried by our add), or waiting
              // for a retry since before we asked: ask the job.
              if (added.state !== 'active')
                void this.outcomeOf(jobId).then((ended) => ended && resolve(ended), reject);
              const poll = setInterval(() => {
                this.outcomeOf(jobId).then(
                  (ended) => {
                    if (ended) resolve(ended);
                    // Gone without our seeing its end (Redis restarted or it aged out): ask again.
                    else if (ended === null) void this.add(module, version, options).catch(() => undefined);
                  },
                  () => undefined,
                );
              }, this.pollIntervalMs);
              cleanups.push(() => clearInterval(poll));
            }, reject);
          },
          (error: unknown) => reject(queueError(error, 'could not wait for the fetch', module, version)),
        );
      });
      if (outcome.state !== 'completed') throw decodeJobFailure(outcome.failedReason, OP, refs);
      return toFetchResult(outcome.returnvalue);
    } finally {
      settled = true;
      for (const cleanup of cleanups) cleanup();
    }
  }

  async close(): Promise<void> {
    await this.events.close();
    await this.queue.close();
  }

  /**
   * The job's end when it has ended, or its last attempt's failure while it waits for a retry;
   * `undefined` while it runs or waits with no failed attempt; `null` when there is no such job.
   */
  private async outcomeOf(jobId: string): Promise<WaitEnd | undefined | null> {
    // The state first, then the job: a job read first may be the attempt still running, whose
    // state is failed by the time it is asked (with no reason in the copy read). The move to
    // completed or failed writes the state and the job at once, so read after, the job has them.
    const state = await this.queue.getJobState(jobId);
    if (state === 'unknown') return null;
    const job = await this.queue.getJob(jobId);
    if (!job) return null;
    if (state === 'completed') return { state: 'completed', returnvalue: job.returnvalue };
    // A failed job retried meanwhile (another replica's add) has lost its reason: not ended.
    if (state === 'failed')
      return job.failedReason ? { state: 'failed', failedReason: job.failedReason } : undefined;
    // A retry clears the reason (`job.retry`), and a move by a host limit spends no attempt, so
    // a reason here is the failed attempt the job waits to retry. One not in our format (BullMQ's
    // own, a lost lock) says nothing a client could use: the retry will tell.
    if (state !== 'active' && job.attemptsMade > 0 && isEncodedJobFailure(job.failedReason))
      return { state: 'retrying', failedReason: job.failedReason };
    return undefined;
  }

  /** Moves a failed job back to waiting with fresh attempts; another replica may have done it first. */
  private async retryFailed(jobId: string): Promise<string> {
    const job = await this.queue.getJob(jobId);
    if (!job) return 'unknown';
    try {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    } catch {
      // No longer failed: someone else retried it.
    }
    return this.queue.getJobState(jobId);
  }

  /**
   * The failure of the job's last attempt, when there was one that says more than `internal`;
   * nothing is asked of a queue Redis that is away (the question would wait for it).
   */
  private async lastAttemptFailure(
    jobId: string,
    refs: { module: string; version: string },
  ): Promise<ModuleError | undefined> {
    if (this.connection.status !== 'ready') return undefined;
    const job = await this.queue.getJob(jobId).catch(() => undefined);
    if (!job?.failedReason) return undefined;
    const failure = decodeJobFailure(job.failedReason, OP, refs);
    return failure.kind === 'internal' ? undefined : failure;
  }
}

function toFetchResult(value: unknown): FetchResult {
  const result = (value as Partial<FetchResult> | null)?.result;
  return { result: result === 'already-stored' ? 'already-stored' : 'fetched' };
}

function queueError(error: unknown, message: string, module: string, version: string): ModuleError {
  if (isModuleError(error)) return error;
  return errors.unavailable(OP, `${module}@${version}: ${message}`, {
    module,
    version,
    cause: error,
    detail: error instanceof Error ? error.message : String(error),
  });
}
