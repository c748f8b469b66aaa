import { errors, type ModuleError, type ModuleErrorOptions } from './module-error';

/**
 * Whether a fired signal fired for a deadline (`AbortSignal.timeout`, `withDeadline`, a
 * `CallDeadline`'s timer, a gRPC call's deadline: their reason is a `TimeoutError`) rather than
 * for a caller that went away. Only the latter is `cancelled`; a deadline is `timeout`, answered 504.
 */
export function abortedByDeadline(signal: AbortSignal): boolean {
  const reason: unknown = signal.reason;
  return (
    typeof reason === 'object' && reason !== null && (reason as { name?: unknown }).name === 'TimeoutError'
  );
}

/**
 * The error for a call whose signal has fired, with the reason's message: `timeout` when a
 * deadline fired it, `cancelled` when the caller went away.
 */
export function abortedError(op: string, signal: AbortSignal, options: ModuleErrorOptions = {}): ModuleError {
  const reason: unknown = signal.reason;
  // DOMException (what AbortSignal.timeout() uses) is not an Error subclass everywhere.
  const { message } = typeof reason === 'object' && reason !== null ? (reason as { message?: unknown }) : {};
  const text = typeof message === 'string' && message !== '' ? message : 'the operation was aborted';
  const withCause = { ...options, cause: reason };
  return abortedByDeadline(signal)
    ? errors.timeout(op, text, withCause)
    : errors.cancelled(op, text, withCause);
}

/** Throws {@link abortedError} when the signal has fired. */
export function throwIfAborted(
  op: string,
  signal: AbortSignal | undefined,
  options: ModuleErrorOptions = {},
): void {
  if (signal?.aborted) throw abortedError(op, signal, options);
}

/**
 * Waits for shared work without letting one caller's signal cancel it for the others: when the
 * signal fires first, this caller alone gets `stopped()` (its own `cancelled` or `timeout`) and
 * the work goes on.
 */
export function waitUnlessAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  stopped: (signal: AbortSignal) => Error,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(stopped(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(stopped(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
