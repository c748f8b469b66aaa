import { DelayedError, Job, type Processor, type Queue } from 'bullmq';
import { isModuleError } from '@modproxy/errors';
import type { HostDecision, HostOutcome, HostPoliteness } from './host-politeness';

export interface HostGateOptions<T> {
  politeness: HostPoliteness;
  /**
   * The queue the gated jobs come from. With it, a job refused because its host is at its
   * concurrency waits in the host's line and the next slot given back wakes it at once
   * (promoted from delayed); without, it waits for its own timer. @default none
   */
  queue?: Queue;
  /**
   * The host a job's work goes to, for `wrap`; `undefined` runs the job without a limit (e.g.
   * `UPSTREAM=off`). @default none: every job runs without a limit
   */
  hostOf?(job: Job<T>): string | undefined;
  /** What a job's failure says about its host. @default {@link hostOutcomeOf} */
  classify?(error: unknown): HostOutcome;
  /**
   * First delay of a job refused because its host is at its concurrency; doubled each time the
   * same job is refused again, up to `maxContentionDelayMs`, and spread by ±50 %. With a
   * `queue`, a slot given back wakes the job first, so its own timer is only the fallback (and
   * waking for nothing costs every job a refusal): 1000, else 250.
   */
  contentionDelayMs?: number;
  /** @default 10000 with a `queue`, else 5000 */
  maxContentionDelayMs?: number;
  /**
   * With a `queue`, a job that waits in a line of others has its own timer pushed out in
   * proportion (one more step per concurrency's worth of jobs ahead), up to this: its timer is
   * only for a wake that never comes (the releasing process died), and timers firing while the
   * line is long would each cost a refusal. @default 60000
   */
  maxLineDelayMs?: number;
  /** Told when a job is moved back to delayed. */
  onDeferred?(job: Job<T>, decision: Extract<HostDecision, { granted: false }>, delayMs: number): void;
  /** Told when giving a slot back failed (the lease then expires by itself). */
  onReleaseError?(host: string, error: unknown): void;
  /** @default Math.random */
  random?(): number;
}

/**
 * Wraps a BullMQ processor so that a job runs only with a slot of its host: a job whose host
 * is paused, at its concurrency or out of tokens goes back to delayed
 * (`moveToDelayed` + `DelayedError`, which spends no attempt) until a retry may succeed.
 * While the job runs, its lease is kept alive; after, the slot is given back with the outcome.
 */
export class HostGate<T = unknown> {
  private readonly politeness: HostPoliteness;
  private readonly classify: (error: unknown) => HostOutcome;
  private readonly contentionDelayMs: number;
  private readonly maxContentionDelayMs: number;
  private readonly maxLineDelayMs: number;
  private readonly random: () => number;

  constructor(private readonly options: HostGateOptions<T>) {
    this.politeness = options.politeness;
    this.classify = options.classify ?? hostOutcomeOf;
    const woken = options.queue !== undefined;
    this.contentionDelayMs = options.contentionDelayMs ?? (woken ? 1_000 : 250);
    this.maxContentionDelayMs = Math.max(
      this.contentionDelayMs,
      options.maxContentionDelayMs ?? (woken ? 10_000 : 5_000),
    );
    this.maxLineDelayMs = Math.max(this.maxContentionDelayMs, options.maxLineDelayMs ?? 60_000);
    this.random = options.random ?? Math.random;
  }

  /** A BullMQ processor that runs `processor` only with a slot of the job's host. */
  wrap<R>(processor: Processor<T, R>): Processor<T, R> {
    return (job, token, signal) =>
      this.run(job, token, this.options.hostOf?.(job), () => processor(job, token, signal));
  }

  /**
   * Runs `work` for `job` with a slot of `host` (at once when `host` is undefined); when no slot
   * is free, moves the job back to delayed with `token` and throws BullMQ's `DelayedError`.
   */
  async run<R>(
    job: Job<T>,
    token: string | undefined,
    host: string | undefined,
    work: () => Promise<R>,
  ): Promise<R> {
    if (host === undefined) return work();
    const decision = await this.politeness.acquire(host);
    if (!decision.granted) {
      const queue = this.options.queue;
      const inLine = decision.reason === 'concurrency' && queue !== undefined && job.id !== undefined;
      let delayMs = this.deferral(job, decision.retryAfterMs);
      if (inLine) {
        const ahead = await this.politeness.lineLength(decision.host, queue.name);
        const slots = this.politeness.limits.limitFor(decision.host).concurrency;
        delayMs = Math.min(this.maxLineDelayMs, Math.ceil(delayMs * (1 + ahead / slots)));
      }
      await job.moveToDelayed(Date.now() + delayMs, token);
      // In line only once it is delayed, so whoever wakes it finds it there.
      if (inLine && job.id !== undefined) await this.politeness.park(decision.host, queue.name, job.id);
      this.options.onDeferred?.(job, decision, delayMs);
      throw new DelayedError(`host ${decision.host}: ${decision.reason}; retry in ${delayMs} ms`);
    }
    const { lease } = decision;
    const keepAlive = setInterval(
      () => {
        this.politeness.extend(lease).catch(() => undefined);
      },
      Math.max(1_000, Math.floor(this.politeness.leaseMs / 3)),
    );
    keepAlive.unref();
    let outcome: HostOutcome = { kind: 'neutral' };
    try {
      const result = await work();
      outcome = { kind: 'success' };
      return result;
    } catch (error) {
      outcome = this.classify(error);
      throw error;
    } finally {
      clearInterval(keepAlive);
      await this.politeness
        .release(lease, outcome)
        .then(() => this.wakeNext(lease.host))
        .catch((error: unknown) => this.options.onReleaseError?.(lease.host, error));
    }
  }

  /**
   * Promotes the job that has waited longest for `host` from delayed to waiting. Entries whose
   * job is gone or no longer delayed (its timer woke it first) are skipped, a few at most.
   */
  private async wakeNext(host: string): Promise<void> {
    const queue = this.options.queue;
    if (!queue) return;
    for (let tries = 0; tries < WAKE_TRIES; tries++) {
      const id = await this.politeness.nextParked(host, queue.name);
      if (id === undefined) return;
      const parked = await Job.fromId(queue, id);
      if (!parked) continue;
      try {
        await parked.promote();
        return;
      } catch {
        // Not delayed any more: it is running, waiting or done.
      }
    }
  }

  /**
   * How long a refused job waits: at least what the host's state says, plus a spread that
   * grows with every refusal of the same job, so a burst of jobs for one host does not come
   * back all at once (and keeps coming back less often the longer the host is busy).
   */
  private deferral(job: Job<T>, retryAfterMs: number): number {
    const refusals = Math.max(0, job.attemptsStarted - job.attemptsMade - 1);
    const step = Math.min(this.maxContentionDelayMs, this.contentionDelayMs * 2 ** Math.min(refusals, 20));
    return Math.max(1, Math.ceil(retryAfterMs + step * (0.5 + this.random())));
  }
}

/** Line entries looked at per slot given back. */
const WAKE_TRIES = 5;

/** Error kinds that mean a source host did not answer properly. */
const HOST_FAILURE_KINDS = new Set(['timeout', 'bad-gateway', 'unavailable']);

/**
 * What an error says about the host the work went to: an upstream's timeout, gateway failure
 * or unavailability (429/503, with its Retry-After) is the host's failure; any other answer
 * from upstream (not found, gone, refused) is the host working; our own cancellations,
 * failures of anything but upstream (`op` not `upstream.*`, e.g. storage) and the go
 * command's full local queue (`unavailable` from `upstream.direct.*`) say nothing.
 */
export function hostOutcomeOf(error: unknown): HostOutcome {
  if (!isModuleError(error) || error.kind === 'cancelled' || !error.op.startsWith('upstream.'))
    return { kind: 'neutral' };
  // The go command's own queue being full is this server's capacity, not the VCS host's answer.
  if (error.kind === 'unavailable' && error.op.startsWith('upstream.direct.')) return { kind: 'neutral' };
  if (!HOST_FAILURE_KINDS.has(error.kind)) return { kind: 'success' };
  return {
    kind: 'failure',
    errorKind: error.kind,
    message: error.message,
    ...(error.retryAfterSeconds !== undefined ? { retryAfterMs: error.retryAfterSeconds * 1000 } : {}),
  };
}
