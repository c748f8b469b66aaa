import {
  MongoError,
  MongoInvalidArgumentError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoParseError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
} from 'mongodb';
import { errors, ModuleError, type ModuleErrorOptions } from '@modproxy/errors';
import { toStorageError } from '@modproxy/storage';

/** E11000: a unique index refused the insert. */
export const DUPLICATE_KEY = 11000;
/** CosmosDB's Mongo API answers "request rate is large" with this code; the request may be retried later. */
const COSMOS_TOO_MANY_REQUESTS = 16500;

/** True for a server error from a unique index (the write lost a race or repeated a key). */
export function isDuplicateKeyError(error: unknown): boolean {
  return error instanceof MongoServerError && error.code === DUPLICATE_KEY;
}

/**
 * Translates a driver failure into the port's error kinds, at the adapter's edge: a server we
 * cannot reach (or that asks us to back off) is `unavailable`, a driver deadline is `timeout`,
 * a duplicate key is `already-exists`, and a call whose signal fired keeps that meaning
 * (`cancelled`, or `timeout` for a deadline) whatever the driver threw when it was torn down.
 */
export function toMongoStorageError(
  error: unknown,
  op: string,
  signal: AbortSignal | undefined,
  options: ModuleErrorOptions = {},
): ModuleError {
  if (error instanceof ModuleError || signal?.aborted) return toStorageError(error, op, signal, options);
  const withCause = { ...options, cause: error };
  // The connection-string parser throws its own MongoParseError class, not the driver's.
  const badConnectionString = error instanceof Error && error.name === 'MongoParseError';
  if (badConnectionString || error instanceof MongoParseError || error instanceof MongoInvalidArgumentError) {
    // "Username contains unescaped characters <the user name>": the connection string's secret.
    const message = (error as Error).message.replace(/(unescaped characters)\s.*$/s, '$1');
    return errors.invalidArgument(op, `MongoDB: ${message}`, withCause);
  }
  if (!(error instanceof MongoError)) return toStorageError(error, op, signal, options);
  if (error instanceof MongoOperationTimeoutError) return errors.timeout(op, error.message, withCause);
  if (
    error instanceof MongoNetworkError ||
    error instanceof MongoServerSelectionError ||
    error instanceof MongoTopologyClosedError ||
    error instanceof MongoNotConnectedError
  ) {
    return errors.unavailable(op, `MongoDB unreachable: ${error.message}`, withCause);
  }
  if (error instanceof MongoServerError) {
    if (error.code === DUPLICATE_KEY)
      return errors.alreadyExists(op, 'module version already stored', withCause);
    if (error.code === COSMOS_TOO_MANY_REQUESTS || error.hasErrorLabel('RetryableWriteError')) {
      return errors.unavailable(op, `MongoDB busy: ${error.message}`, withCause);
    }
  }
  return errors.internal(op, `MongoDB: ${error.message}`, withCause);
}
