import type { ErrorKind } from './module-error';

/**
 * Domain error → HTTP status for the GOPROXY protocol. The go command falls through to the
 * next proxy on 404 and 410 only, so "we do not have it" must be one of those, and a failure
 * of ours or of an upstream must not be.
 */
const STATUS: Record<ErrorKind, number> = {
  'invalid-argument': 400,
  'not-found': 404,
  gone: 410,
  forbidden: 403,
  'already-exists': 409,
  'failed-precondition': 412,
  cancelled: 499,
  timeout: 504,
  unavailable: 503,
  'bad-gateway': 502,
  internal: 500,
};

export function httpStatusForKind(kind: ErrorKind): number {
  return STATUS[kind];
}
