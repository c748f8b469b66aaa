import { UnrecoverableError } from 'bullmq';
import { isErrorKind, ModuleError, type ErrorKind } from '@modproxy/errors';

/** Failures that another attempt cannot mend: the job fails at once, without retries. */
const UNRECOVERABLE: ReadonlySet<ErrorKind> = new Set<ErrorKind>([
  'not-found',
  'gone',
  'invalid-argument',
  'forbidden',
]);

export function isUnrecoverableKind(kind: ErrorKind): boolean {
  return UNRECOVERABLE.has(kind);
}

const PATTERN = /^\[([a-z-]+)(?: retry-after=(\d+))?\] ([\s\S]*)$/;

/**
 * A ModuleError as a job's failed reason, `[kind] message` (with `retry-after=<s>` when set), so
 * that its kind crosses the queue: a producer waiting for the job reads it back with
 * {@link decodeJobFailure} and answers as if it had fetched itself (not-found stays 404). Only
 * the message goes, which clients may read; the operator-only detail stays in the worker's log.
 */
export function encodeJobFailure(error: ModuleError): string {
  const retryAfter =
    error.retryAfterSeconds === undefined
      ? ''
      : ` retry-after=${Math.max(0, Math.ceil(error.retryAfterSeconds))}`;
  return `[${error.kind}${retryAfter}] ${error.message}`;
}

/** Whether a failed reason was written by {@link encodeJobFailure} (BullMQ writes its own, e.g. for a lost lock). */
export function isEncodedJobFailure(reason: string | undefined): reason is string {
  const match = PATTERN.exec(reason ?? '');
  return match !== null && isErrorKind(match[1]);
}

/** A failed reason back to a ModuleError; a reason not written by {@link encodeJobFailure} is `internal`. */
export function decodeJobFailure(
  reason: string | undefined,
  op: string,
  refs: { module?: string; version?: string } = {},
): ModuleError {
  const match = PATTERN.exec(reason ?? '');
  if (!match || !isErrorKind(match[1])) {
    return new ModuleError('internal', op, 'the job failed', {
      ...refs,
      detail: reason ?? 'no reason recorded',
    });
  }
  return new ModuleError(match[1] as ErrorKind, op, match[3] ?? '', {
    ...refs,
    ...(match[2] === undefined ? {} : { retryAfterSeconds: Number(match[2]) }),
  });
}

/**
 * What a worker throws for a failed attempt: an UnrecoverableError (no retry) for the kinds
 * another attempt cannot mend, a plain Error (retried with backoff) for the others.
 */
export function jobFailureError(error: ModuleError): Error {
  const reason = encodeJobFailure(error);
  return isUnrecoverableKind(error.kind) ? new UnrecoverableError(reason) : new Error(reason);
}
