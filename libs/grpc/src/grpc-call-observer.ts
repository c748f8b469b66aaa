import { ServerInterceptingCall, status, type Metadata, type ServerInterceptor } from '@grpc/grpc-js';
import { ERROR_KIND_METADATA_KEY } from './error-codes';

/** One finished call a gRPC server answered, for metrics. */
export interface GrpcServedCall {
  /** The full service name, e.g. `modproxy.storage.v1.StorageService`. */
  service: string;
  /** The method as the service definition names it, e.g. `GetZip`. */
  method: string;
  /** The status code's name: `OK`, `NOT_FOUND`, `CANCELLED`, … */
  code: string;
  /**
   * `ok`, or the domain error kind the server sent in its trailer (`not-found`, `gone`,
   * `already-exists`, …); the code's name in lower case for errors raised by grpc-js itself.
   */
  result: string;
  durationMs: number;
}

/** Told of every finished call; must not throw. */
export type GrpcCallListener = (call: GrpcServedCall) => void;

/** Health checks are probes, not traffic: Watch streams last as long as the prober's connection. */
const UNOBSERVED_SERVICES = new Set(['grpc.health.v1.Health']);

const CODE_NAMES = new Map<number, string>(
  Object.entries(status)
    .filter((entry): entry is [string, number] => typeof entry[1] === 'number')
    .map(([name, code]) => [code, name]),
);

function codeName(code: number): string {
  return CODE_NAMES.get(code) ?? 'UNKNOWN';
}

function resultOf(code: number, metadata: Metadata | undefined): string {
  if (code === status.OK) return 'ok';
  const kind = metadata?.get(ERROR_KIND_METADATA_KEY)[0];
  return typeof kind === 'string' && /^[a-z-]{1,32}$/.test(kind) ? kind : codeName(code).toLowerCase();
}

/**
 * A server interceptor that times every call from its start to the status sent (or to the
 * client's cancellation) and tells `listener` the method, the code and the result, so every
 * gRPC server here gets the same request metrics without its handlers knowing.
 */
export function observeGrpcCalls(listener: GrpcCallListener): ServerInterceptor {
  return (descriptor, call) => {
    const [service = 'unknown', method = 'unknown'] = descriptor.path.replace(/^\//, '').split('/');
    if (UNOBSERVED_SERVICES.has(service)) return new ServerInterceptingCall(call);
    const started = performance.now();
    let reported = false;
    const report = (code: number, metadata?: Metadata) => {
      if (reported) return;
      reported = true;
      try {
        listener({
          service,
          method,
          code: codeName(code),
          result: resultOf(code, metadata),
          durationMs: performance.now() - started,
        });
      } catch {
        // Metrics must never change an answer.
      }
    };
    return new ServerInterceptingCall(call, {
      start: (next) => next({ onCancel: () => report(status.CANCELLED) }),
      sendStatus: (sent, next) => {
        report(sent.code, sent.metadata ?? undefined);
        next(sent);
      },
    });
  };
}
