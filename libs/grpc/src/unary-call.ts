import {
  status,
  type CallOptions,
  type ClientUnaryCall,
  type Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import { abortedError, type ModuleError, type ModuleErrorOptions } from '@modproxy/errors';
import { fromGrpcError } from './error-codes';

/** Starts one unary call of a grpc-js client with this metadata and deadline. */
export type UnaryInvoke<Res> = (
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

export interface UnaryCallOptions {
  /** For errors, e.g. `storage.grpc.info`. */
  op: string;
  /** What the call is about (module, version), for its errors. */
  refs: ModuleErrorOptions;
  /** The caller's: cancels the call. */
  signal: AbortSignal | undefined;
  /** From the call's start. */
  deadlineMs: number;
  /** The call's metadata (the bearer token). */
  metadata: Metadata;
}

/**
 * A failed call as a ModuleError: the kind the server meant, or, when the call was cancelled
 * because the caller's signal fired, that signal's reason (a caller's deadline stays `timeout`).
 */
export function grpcCallFailure(
  error: ServiceError,
  op: string,
  refs: ModuleErrorOptions,
  signal?: AbortSignal,
): ModuleError {
  if (signal?.aborted && error.code === status.CANCELLED) return abortedError(op, signal, refs);
  return fromGrpcError(error, op, refs);
}

/** One unary call under a deadline, cancelled by the caller's signal; failures as {@link grpcCallFailure}. */
export function callUnary<Res>(options: UnaryCallOptions, invoke: UnaryInvoke<Res>): Promise<Res> {
  const { op, refs, signal } = options;
  if (signal?.aborted) return Promise.reject(abortedError(op, signal, refs));
  return new Promise<Res>((resolve, reject) => {
    const call = invoke(
      options.metadata,
      { deadline: Date.now() + options.deadlineMs },
      (error, response) => {
        signal?.removeEventListener('abort', onAbort);
        if (error) reject(grpcCallFailure(error, op, refs, signal));
        else resolve(response);
      },
    );
    const onAbort = () => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
