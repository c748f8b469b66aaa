import { Metadata, status, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { redactText } from '@modproxy/config';
import {
  isErrorKind,
  ModuleError,
  toModuleError,
  type ErrorKind,
  type ModuleErrorOptions,
} from '@modproxy/errors';

/**
 * The one mapping between domain error kinds and gRPC status codes, used by the server to
 * answer and by the client to translate back.
 *
 * Codes alone lose information (`gone` and `not-found` share NOT_FOUND), so the server also
 * sends the kind itself in the trailing metadata key {@link ERROR_KIND_METADATA_KEY}; the
 * client trusts that key when it names a known kind and falls back to the code otherwise
 * (errors raised by grpc-js itself, or by a peer that is not ours).
 */
export const ERROR_KIND_METADATA_KEY = 'modproxy-error-kind';

const CODE_FOR_KIND: Record<ErrorKind, status> = {
  'invalid-argument': status.INVALID_ARGUMENT,
  'not-found': status.NOT_FOUND,
  // "Known and removed" is still "not here" for a caller that only reads the code.
  gone: status.NOT_FOUND,
  // Refused by policy (a denied module): retrying will not help.
  forbidden: status.PERMISSION_DENIED,
  'already-exists': status.ALREADY_EXISTS,
  'failed-precondition': status.FAILED_PRECONDITION,
  cancelled: status.CANCELLED,
  timeout: status.DEADLINE_EXCEEDED,
  unavailable: status.UNAVAILABLE,
  // A dependency of the server answered badly: to our caller the service could not do its
  // work right now and a later retry may succeed, which is what UNAVAILABLE means; INTERNAL
  // would claim a broken invariant of the server itself.
  'bad-gateway': status.UNAVAILABLE,
  internal: status.INTERNAL,
};

const KIND_FOR_CODE: Record<status, ErrorKind> = {
  [status.OK]: 'internal',
  [status.CANCELLED]: 'cancelled',
  [status.UNKNOWN]: 'internal',
  [status.INVALID_ARGUMENT]: 'invalid-argument',
  [status.DEADLINE_EXCEEDED]: 'timeout',
  [status.NOT_FOUND]: 'not-found',
  [status.ALREADY_EXISTS]: 'already-exists',
  // Missing or wrong credentials will not fix themselves on retry: like FAILED_PRECONDITION,
  // the system's configuration has to change first.
  [status.PERMISSION_DENIED]: 'failed-precondition',
  [status.UNAUTHENTICATED]: 'failed-precondition',
  [status.RESOURCE_EXHAUSTED]: 'unavailable',
  [status.FAILED_PRECONDITION]: 'failed-precondition',
  [status.ABORTED]: 'unavailable',
  [status.OUT_OF_RANGE]: 'invalid-argument',
  [status.UNIMPLEMENTED]: 'internal',
  [status.INTERNAL]: 'internal',
  [status.UNAVAILABLE]: 'unavailable',
  [status.DATA_LOSS]: 'internal',
};

export function grpcStatusForKind(kind: ErrorKind): status {
  return CODE_FOR_KIND[kind];
}

export function kindForGrpcStatus(code: status): ErrorKind {
  return KIND_FOR_CODE[code] ?? 'internal';
}

/** A status for grpc-js to send: usable as a unary callback error and as a stream's `error` event. */
export type GrpcStatusError = Error & Pick<StatusObject, 'code' | 'details' | 'metadata'>;

export function grpcStatusError(code: status, details: string, metadata = new Metadata()): GrpcStatusError {
  return Object.assign(new Error(details), { code, details, metadata });
}

/** Server side: any failure becomes a gRPC status carrying its kind. */
export function toGrpcStatusError(
  error: unknown,
  op: string,
  options: ModuleErrorOptions = {},
): GrpcStatusError {
  const moduleError = toModuleError(error, op, options);
  const metadata = new Metadata();
  metadata.set(ERROR_KIND_METADATA_KEY, moduleError.kind);
  // Details travel to other services and may end up in an HTTP body: no URL userinfo.
  return grpcStatusError(grpcStatusForKind(moduleError.kind), redactText(moduleError.message), metadata);
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === 'number';
}

/** Client side: a failed call becomes the ModuleError the server meant. */
export function fromGrpcError(error: unknown, op: string, options: ModuleErrorOptions = {}): ModuleError {
  if (error instanceof ModuleError) return error;
  if (!isServiceError(error)) return toModuleError(error, op, options);
  const [sent] = error.metadata?.get(ERROR_KIND_METADATA_KEY) ?? [];
  const kind = isErrorKind(sent) ? sent : kindForGrpcStatus(error.code);
  return new ModuleError(kind, op, error.details || error.message, { ...options, cause: error });
}
