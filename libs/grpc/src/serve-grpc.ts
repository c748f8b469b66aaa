import { Server, type ServerCredentials, type ServerInterceptor, type ServerOptions } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { observeGrpcCalls, type GrpcCallListener } from './grpc-call-observer';

export interface ServeGrpcOptions {
  /** The name grpc.health.v1 reports for, beside the empty name that stands for the server. */
  serviceName: string;
  /** Adds the service's handlers to the server. */
  register(server: Server): void;
  host: string;
  /** 0 picks a free port (see the returned `port`). */
  port: number;
  credentials: ServerCredentials;
  serverOptions: ServerOptions;
  /** How long `close()` lets running calls finish before cutting them off. */
  shutdownGraceMs: number;
  /** Told of every call but health checks (method, code, result, duration). @default none */
  onCall?: GrpcCallListener;
  /** More interceptors, after the one that times calls. @default none */
  interceptors?: ServerInterceptor[];
}

export interface ServedGrpc {
  /** The port actually bound. */
  port: number;
  server: Server;
  health: HealthImplementation;
  /** SERVING or NOT_SERVING for both health names; ignored once closing. */
  setServing(serving: boolean): void;
  /** NOT_SERVING, then running calls finish (up to the grace), then the rest are cut off. */
  close(): Promise<void>;
}

function address(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A gRPC server with grpc.health.v1 and a graceful, bounded shutdown: what every service here runs. */
export async function serveGrpc(options: ServeGrpcOptions): Promise<ServedGrpc> {
  const interceptors = [
    ...(options.onCall ? [observeGrpcCalls(options.onCall)] : []),
    ...(options.interceptors ?? []),
  ];
  const server = new Server({
    ...options.serverOptions,
    ...(interceptors.length > 0
      ? { interceptors: [...(options.serverOptions.interceptors ?? []), ...interceptors] }
      : {}),
  });
  options.register(server);
  const health = new HealthImplementation({ '': 'NOT_SERVING', [options.serviceName]: 'NOT_SERVING' });
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address(options.host, options.port), options.credentials, (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });

  let closing: Promise<void> | undefined;
  const report = (state: 'SERVING' | 'NOT_SERVING') => {
    health.setStatus('', state);
    health.setStatus(options.serviceName, state);
  };
  const setServing = (serving: boolean) => {
    if (!closing) report(serving ? 'SERVING' : 'NOT_SERVING');
  };
  setServing(true);
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      report('NOT_SERVING');
      const force = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, options.shutdownGraceMs);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    return closing;
  };
  return { port, server, health, setServing, close };
}
