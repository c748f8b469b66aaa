import { abortedByDeadline, errors, waitUnlessAborted, type ModuleError } from '@modproxy/errors';

/**
 * Collapses concurrent calls for the same key into one: the first caller starts the work,
 * later callers share its promise until it settles. Nothing is remembered afterwards, so a
 * failure is never cached.
 */
export class SingleFlight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  run(key: string, work: () => Promise<T>): Promise<T> {
    const existing = this.inflight.get(key);
    if (existing) return existing;
    const promise = (async () => {
      try {
        return await work();
      } finally {
        this.inflight.delete(key);
      }
    })();
    this.inflight.set(key, promise);
    return promise;
  }

  /** Keys with work under way, for metrics and tests. */
  get size(): number {
    return this.inflight.size;
  }
}

/** What a caller waiting for shared work was waiting for, for the error when it stops waiting. */
export interface WaitContext {
  op: string;
  module: string;
  version?: string;
}

/**
 * Waits for a shared promise without letting one caller's cancellation cancel it for all.
 * A caller that stops waiting gets a `ModuleError`: `cancelled` when it went away, `timeout`
 * when its deadline fired (never a bare abort reason, which would pass for an unexpected error).
 */
export function waitFor<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  context: WaitContext,
): Promise<T> {
  return waitUnlessAborted(promise, signal, (fired) => stoppedWaiting(fired, context));
}

function stoppedWaiting(signal: AbortSignal, context: WaitContext): ModuleError {
  const subject = context.version === undefined ? context.module : `${context.module}@${context.version}`;
  const options = { module: context.module, version: context.version, cause: signal.reason };
  return abortedByDeadline(signal)
    ? errors.timeout(context.op, `${subject}: timed out waiting for the fetch`, options)
    : errors.cancelled(context.op, `${subject}: cancelled by the caller`, options);
}
