import { DelayedError, type Job, type Processor } from 'bullmq';
import { isModuleError } from '@modproxy/errors';
import type { HostDecision, HostOutcome, HostPoliteness } from './host-politeness';

export interface HostGateOptions<T> {
  politeness: HostPoliteness;
  /**
   * The host a job's work goes to, for `wrap`; `undefined` runs the job without a limit (e.g.
   * `UPSTREAM=off`). @default none: every job runs without a limit
   */
  hostOf?(job: Job<T>): string | undefined;
  /** What a job's failure says about its host. @default {@link hostOutcomeOf} */
  classify?(error: unknown): HostOutcome;
  /**
   * First delay of a job refused because its host is at its concurrency; doubled each time the
   * same job is refused again, up to `maxContentionDelayMs`, and spread by ±50 %. @default 250
   */
  contentionDelayMs?: number;
  /** @default 5000 */
  maxContentionDelayMs?: number;
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
export class HostGate<T> {
  private readonly politeness: HostPoliteness;
  private readonly classify: (error: unknown) => HostOutcome;
  private readonly contentionDelayMs: number;
  private readonly maxContentionDelayMs: number;
  private readonly random: () => number;

  constructor(private readonly options: HostGateOptions<T>) {
    this.politeness = options.politeness;
    this.classify = options.classify ?? hostOutcomeOf;
    this.contentionDelayMs = options.contentionDelayMs ?? 250;
    this.maxContentionDelayMs = Math.max(this.contentionDelayMs, options.maxContentionDelayMs ?? 5_000);
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
      const delayMs = this.deferral(job, decision.retryAfterMs);
      await job.moveToDelayed(Date.now() + delayMs, token);
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
        .catch((error: unknown) => this.options.onReleaseError?.(lease.host, error));
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

/** Error kinds that mean a source host did not answer properly. */
const HOST_FAILURE_KINDS = new Set(['timeout', 'bad-gateway', 'unavailable']);

/**
 * What an error says about the host the work went to: an upstream's timeout, gateway failure
 * or unavailability (429/503, with its Retry-After) is the host's failure; any other answer
 * from upstream (not found, gone, refused) is the host working; our own cancellations and
 * failures of anything but upstream (`op` not `upstream.*`, e.g. storage) say nothing.
 */
export function hostOutcomeOf(error: unknown): HostOutcome {
  if (!isModuleError(error) || error.kind === 'cancelled' || !error.op.startsWith('upstream.'))
    return { kind: 'neutral' };
  if (!HOST_FAILURE_KINDS.has(error.kind)) return { kind: 'success' };
  return {
    kind: 'failure',
    errorKind: error.kind,
    message: error.message,
    ...(error.retryAfterSeconds !== undefined ? { retryAfterMs: error.retryAfterSeconds * 1000 } : {}),
  };
}
