import type { Server, ServerOptions } from '@grpc/grpc-js';
import type { HealthImplementation } from 'grpc-health-check';
import { storageV1 } from '@modproxy/contracts';
import { grpcServerCredentials, serveGrpc, type GrpcCallListener, type GrpcServerTls } from '@modproxy/grpc';
import type { ModuleStorage } from '@modproxy/storage';
import { createStorageServiceHandlers, type StorageServiceOptions } from './storage-service';
import { observeZipBytes, type ZipBytesListener } from './zip-bytes-observer';
import { DEFAULT_MAX_MESSAGE_BYTES } from './zip-chunks';

/** The name health checks ask about; the empty name stands for the whole server. */
export const STORAGE_SERVICE_NAME = 'modproxy.storage.v1.StorageService';

export type StorageGrpcServerTls = GrpcServerTls;

export interface StorageGrpcServerOptions extends StorageServiceOptions {
  /** The backend to serve. The server never closes it: its owner does, after `close()`. */
  storage: ModuleStorage;
  /** Interface to listen on. Default: `127.0.0.1`. */
  host?: string;
  /** Port to listen on; 0 picks a free one (see the returned `port`). */
  port: number;
  /** Serve TLS with this certificate. Default: plaintext. */
  tls?: StorageGrpcServerTls;
  /** Largest message sent or received, in bytes. Default: 32 MiB (a go.mod may be 16 MiB). */
  maxMessageBytes?: number;
  /** Interval of keepalive pings on idle connections, to find dead clients. Default: 60000. */
  keepaliveTimeMs?: number;
  /** How long a keepalive ping may wait for its answer. Default: 20000. */
  keepaliveTimeoutMs?: number;
  /**
   * Connections are told to go away after this long (with jitter), so clients spread over
   * new instances behind a load balancer. Default: 30 minutes.
   */
  maxConnectionAgeMs?: number;
  /** Calls still running on an aged connection get this long to finish, enough for a large zip. Default: 10 minutes. */
  maxConnectionAgeGraceMs?: number;
  /** How long `close()` lets running calls finish before cutting them off. Default: 10000. */
  shutdownGraceMs?: number;
  /** Told of every call but health checks (method, code, result, duration), for metrics. Default: none. */
  onCall?: GrpcCallListener;
  /** Told of zip bytes served and saved, for metrics. Default: none. */
  zipBytes?: ZipBytesListener;
}

export interface StorageGrpcServer {
  /** The port actually bound (the chosen one when `port` was 0). */
  port: number;
  server: Server;
  /** grpc.health.v1 state: SERVING while up, NOT_SERVING from the start of `close()`. */
  health: HealthImplementation;
  /** Readiness as grpc.health.v1 reports it: the owner says when its backend is up. */
  setServing(serving: boolean): void;
  /** Graceful stop: NOT_SERVING, then running calls finish (up to the grace), then the rest are cut off. */
  close(): Promise<void>;
}

/**
 * Serves `modproxy.storage.v1.StorageService` and `grpc.health.v1.Health` for one backend.
 * Health checks need no token: load balancers and orchestrators probe them.
 */
export async function startStorageGrpcServer(options: StorageGrpcServerOptions): Promise<StorageGrpcServer> {
  const host = options.host ?? '127.0.0.1';
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const shutdownGraceMs = options.shutdownGraceMs ?? 10_000;
  const serverOptions: ServerOptions = {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.keepalive_time_ms': options.keepaliveTimeMs ?? 60_000,
    'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs ?? 20_000,
    'grpc.max_connection_age_ms': options.maxConnectionAgeMs ?? 30 * 60_000,
    'grpc.max_connection_age_grace_ms': options.maxConnectionAgeGraceMs ?? 10 * 60_000,
  };
  const served = await serveGrpc({
    serviceName: STORAGE_SERVICE_NAME,
    register: (server) =>
      server.addService(
        storageV1.StorageServiceService,
        createStorageServiceHandlers(options.storage, {
          ...(options.token === undefined ? {} : { token: options.token }),
          ...(options.maxZipBytes === undefined ? {} : { maxZipBytes: options.maxZipBytes }),
        }),
      ),
    host,
    port: options.port,
    credentials: grpcServerCredentials(options.tls),
    serverOptions,
    shutdownGraceMs,
    ...(options.onCall ? { onCall: options.onCall } : {}),
    ...(options.zipBytes ? { interceptors: [observeZipBytes(options.zipBytes)] } : {}),
  });
  return served;
}
