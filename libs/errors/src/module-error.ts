/**
 * The closed set of things that can go wrong with a module request. Every adapter translates
 * its own failures (HTTP statuses, gRPC codes, database and file-system errors) into one of
 * these at its edge; every transport maps them back out in one place.
 */
export const ERROR_KINDS = [
  'invalid-argument',
  'not-found',
  'gone',
  'forbidden',
  'already-exists',
  'failed-precondition',
  'cancelled',
  'timeout',
  'unavailable',
  'bad-gateway',
  'internal',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

const KIND_NAMES: ReadonlySet<string> = new Set(ERROR_KINDS);

/** Whether a value read from the wire (a gRPC trailer, a job's failure, a Redis record) names a kind. */
export function isErrorKind(value: unknown): value is ErrorKind {
  return typeof value === 'string' && KIND_NAMES.has(value);
}

export interface ModuleErrorOptions {
  module?: string;
  version?: string;
  cause?: unknown;
  /**
   * What an operator needs and a client must not see: which upstream, what it answered. The
   * message is what a client is told; the detail is only logged, and must already be redacted.
   */
  detail?: string;
  /** For `unavailable`: when a retry may succeed (sent as `Retry-After`). */
  retryAfterSeconds?: number;
}

export class ModuleError extends Error {
  readonly kind: ErrorKind;
  /** The operation that failed, e.g. `storage.disk.save` or `upstream.direct.download`. */
  readonly op: string;
  readonly module: string | undefined;
  readonly version: string | undefined;
  readonly detail: string | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(kind: ErrorKind, op: string, message: string, options: ModuleErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ModuleError';
    this.kind = kind;
    this.op = op;
    this.module = options.module;
    this.version = options.version;
    this.detail = options.detail;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isModuleError(error: unknown, kind?: ErrorKind): error is ModuleError {
  return error instanceof ModuleError && (kind === undefined || error.kind === kind);
}

type Factory = (op: string, message: string, options?: ModuleErrorOptions) => ModuleError;
const factory =
  (kind: ErrorKind): Factory =>
  (op, message, options) =>
    new ModuleError(kind, op, message, options);

/** Small constructors, so call sites read `errors.notFound(op, msg, { module })`. */
export const errors = {
  invalidArgument: factory('invalid-argument'),
  notFound: factory('not-found'),
  gone: factory('gone'),
  forbidden: factory('forbidden'),
  alreadyExists: factory('already-exists'),
  failedPrecondition: factory('failed-precondition'),
  cancelled: factory('cancelled'),
  timeout: factory('timeout'),
  unavailable: factory('unavailable'),
  badGateway: factory('bad-gateway'),
  internal: factory('internal'),
} as const;

/**
 * Anything thrown by code we do not own becomes an `internal` ModuleError, except aborts,
 * which keep their meaning (a caller's cancellation or a deadline).
 */
export function toModuleError(error: unknown, op: string, options: ModuleErrorOptions = {}): ModuleError {
  if (error instanceof ModuleError) return error;
  if (error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')) {
    const kind: ErrorKind = error.name === 'TimeoutError' ? 'timeout' : 'cancelled';
    return new ModuleError(kind, op, error.message, { ...options, cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ModuleError('internal', op, message, { ...options, cause: error });
}
