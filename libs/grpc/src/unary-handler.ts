import { status, type handleUnaryCall, type Metadata } from '@grpc/grpc-js';
import type { ModuleErrorOptions } from '@modproxy/errors';
import { hasBearerToken } from './bearer-token';
import { grpcStatusError, toGrpcStatusError, type GrpcStatusError } from './error-codes';
import { openServerCallScope } from './server-call-scope';

/** Whether a call may go on: no token is required, or it carries exactly this one. */
export function authorizedCall(call: { readonly metadata: Metadata }, token: string | undefined): boolean {
  return token === undefined || hasBearerToken(call.metadata, token);
}

/** The status a call without the shared token is answered with, before anything runs. */
export function unauthenticatedStatus(): GrpcStatusError {
  return grpcStatusError(status.UNAUTHENTICATED, 'missing or wrong bearer token');
}

/**
 * A unary method as every service here serves one: authenticate, run `handle` with the call's
 * cancellation (a passed deadline as `timeout`, see {@link openServerCallScope}), answer with
 * its response or a status carrying the error's kind. `refs` names what a failure was about
 * (the request's module, say) in its error.
 */
export function unaryHandler<Req, Res>(
  op: string,
  token: string | undefined,
  handle: (request: Req, signal: AbortSignal, op: string) => Promise<Res>,
  refs: (request: Req) => ModuleErrorOptions = () => ({}),
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    if (!authorizedCall(call, token)) {
      callback(unauthenticatedStatus());
      return;
    }
    const scope = openServerCallScope(call);
    Promise.resolve()
      .then(() => handle(call.request, scope.signal, op))
      .then(
        (response) => callback(null, response),
        (error: unknown) => callback(toGrpcStatusError(error, op, refs(call.request))),
      )
      .finally(() => scope.close());
  };
}
