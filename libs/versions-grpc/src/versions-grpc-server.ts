import type { Server } from '@grpc/grpc-js';
import { grpcServerCredentials, serveGrpc, type GrpcCallListener, type GrpcServerTls } from '@modproxy/grpc';
import { lathensV1 } from '@modproxy/contracts';
import {
  createVersionServiceHandlers,
  type VersionService,
  type VersionServiceOptions,
} from './version-service';

/** The name health checks ask about; the empty name stands for the whole server. */
export const VERSION_SERVICE_NAME = 'modproxy.lathens.v1.VersionService';

export interface VersionsGrpcServerOptions extends VersionServiceOptions {
  /** The service to serve; never closed by the server. */
  service: VersionService;
  /** Interface to listen on. Default: `127.0.0.1`. */
  host?: string;
  /** Port; 0 picks a free one (see the returned `port`). */
  port: number;
  /** Serve TLS with this certificate. Default: plaintext. */
  tls?: GrpcServerTls;
  /** How long `close()` lets running calls finish before cutting them off. Default: 10000. */
  shutdownGraceMs?: number;
  /** Told of every call but health checks (method, code, result, duration), for metrics. Default: none. */
  onCall?: GrpcCallListener;
}

export interface VersionsGrpcServer {
  /** The port actually bound. */
  port: number;
  server: Server;
  /** Readiness as grpc.health.v1 reports it: the owner says when its dependencies are up. */
  setServing(serving: boolean): void;
  /** NOT_SERVING, then running calls finish (up to the grace), then the rest are cut off. */
  close(): Promise<void>;
}

/** Serves `modproxy.lathens.v1.VersionService` and `grpc.health.v1.Health`, over TLS when given a certificate. */
export async function startVersionsGrpcServer(
  options: VersionsGrpcServerOptions,
): Promise<VersionsGrpcServer> {
  const host = options.host ?? '127.0.0.1';
  const shutdownGraceMs = options.shutdownGraceMs ?? 10_000;
  const served = await serveGrpc({
    serviceName: VERSION_SERVICE_NAME,
    register: (server) =>
      server.addService(
        lathensV1.VersionServiceService,
        createVersionServiceHandlers(
          options.service,
          options.token === undefined ? {} : { token: options.token },
        ),
      ),
    host,
    port: options.port,
    credentials: grpcServerCredentials(options.tls),
    serverOptions: {
      'grpc.keepalive_time_ms': 60_000,
      'grpc.keepalive_timeout_ms': 20_000,
      // Clients spread over new replicas behind a load balancer.
      'grpc.max_connection_age_ms': 30 * 60_000,
      'grpc.max_connection_age_grace_ms': 60_000,
    },
    shutdownGraceMs,
    ...(options.onCall ? { onCall: options.onCall } : {}),
  });
  return { port: served.port, server: served.server, setServing: served.setServing, close: served.close };
}
