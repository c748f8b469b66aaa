import {
  makeGenericClientConstructor,
  type ChannelCredentials,
  type Client,
  type ClientUnaryCall,
  type Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { lathensV1 } from '@modproxy/contracts';
import type { ModuleErrorOptions } from '@modproxy/errors';
import {
  bearerMetadata,
  callUnary,
  grpcChannelCredentials,
  type GrpcClientTls,
  type UnaryInvoke,
} from '@modproxy/grpc';
import type { CallOptions } from '@modproxy/storage';
import type { LatestAnswer, ListAnswer } from '@modproxy/versions';
import { sourceFromWire, type VersionService } from './version-service';
import { VERSION_SERVICE_NAME } from './versions-grpc-server';

export interface GrpcVersionsOptions {
  /** Address of lathens' gRPC port, `host:port` (e.g. `127.0.0.1:7071`). */
  url: string;
  /** Shared token sent as `authorization: Bearer <token>`. Default: none. */
  token?: string;
  /**
   * TLS: an object connects with TLS (health checks too), trusting `ca` when given and the
   * system roots otherwise; `false` connects in plaintext. Default: `false`.
   */
  tls?: GrpcClientTls;
  /**
   * Deadline of list and latest. Lathens may wait for a slow upstream (its own wait timeout,
   * 30 s by default), so this is longer. Default: 35000.
   */
  deadlineMs?: number;
  /** Deadline of observe, invalidate and health checks: no upstream behind them. Default: 5000. */
  shortDeadlineMs?: number;
}

interface HealthClient extends Client {
  check(
    request: { service: string },
    metadata: Metadata,
    options: { deadline: number },
    callback: (error: ServiceError | null, response: { status: string | number }) => void,
  ): ClientUnaryCall;
}

const HealthClientConstructor = makeGenericClientConstructor(healthService, 'Health') as unknown as new (
  address: string,
  channelCredentials: ChannelCredentials,
) => HealthClient;

/**
 * The versions provider of a proxy that uses lathens: every call goes to lathens'
 * VersionService, with a deadline; failures come back as the ModuleError kinds lathens
 * reported (`unavailable` when lathens cannot be reached).
 */
export class GrpcVersions implements VersionService {
  private readonly client: lathensV1.VersionServiceClient;
  private readonly health: HealthClient;
  private readonly token: string | undefined;
  private readonly deadlineMs: number;
  private readonly shortDeadlineMs: number;

  constructor(options: GrpcVersionsOptions) {
    this.token = options.token;
    this.deadlineMs = options.deadlineMs ?? 35_000;
    this.shortDeadlineMs = options.shortDeadlineMs ?? 5_000;
    const channelOptions = { 'grpc.keepalive_time_ms': 60_000, 'grpc.keepalive_timeout_ms': 20_000 };
    const channelCredentials = grpcChannelCredentials(options.tls);
    this.client = new lathensV1.VersionServiceClient(options.url, channelCredentials, channelOptions);
    this.health = new HealthClientConstructor(options.url, channelCredentials);
  }

  async list(module: string, options: CallOptions = {}): Promise<ListAnswer> {
    const response = await this.unary<lathensV1.ListResponse>(
      'list',
      { module },
      options.signal,
      this.deadlineMs,
      (metadata, call, callback) => this.client.list({ module }, metadata, call, callback),
    );
    return { versions: response.versions, source: sourceFromWire(response.source), stale: response.stale };
  }

  async latest(module: string, options: CallOptions = {}): Promise<LatestAnswer> {
    const response = await this.unary<lathensV1.LatestResponse>(
      'latest',
      { module },
      options.signal,
      this.deadlineMs,
      (metadata, call, callback) => this.client.latest({ module }, metadata, call, callback),
    );
    return { info: response.info, source: sourceFromWire(response.source), stale: response.stale };
  }

  async observe(module: string, version: string): Promise<void> {
    await this.unary<lathensV1.ObserveResponse>(
      'observe',
      { module, version },
      undefined,
      this.shortDeadlineMs,
      (metadata, call, callback) => this.client.observe({ module, version }, metadata, call, callback),
    );
  }

  async invalidate(module: string): Promise<void> {
    await this.unary<lathensV1.InvalidateResponse>(
      'invalidate',
      { module },
      undefined,
      this.shortDeadlineMs,
      (metadata, call, callback) => this.client.invalidate({ module }, metadata, call, callback),
    );
  }

  /** Asks lathens to refresh the module's list from upstream now; the list it then serves. */
  async refreshList(module: string, options: CallOptions = {}): Promise<ListAnswer> {
    const response = await this.unary<lathensV1.RefreshResponse>(
      'refresh',
      { module },
      options.signal,
      this.deadlineMs,
      (metadata, call, callback) => this.client.refresh({ module }, metadata, call, callback),
    );
    return { versions: response.versions, source: sourceFromWire(response.source), stale: response.stale };
  }

  /** Whether lathens says it is serving (grpc.health.v1), for the proxy's readiness. */
  async serving(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.health.check(
        { service: VERSION_SERVICE_NAME },
        bearerMetadata(undefined),
        { deadline: Date.now() + this.shortDeadlineMs },
        (error, response) => resolve(!error && (response.status === 'SERVING' || response.status === 1)),
      );
    });
  }

  async close(): Promise<void> {
    this.client.close();
    this.health.close();
  }

  private unary<Res>(
    method: string,
    refs: ModuleErrorOptions,
    signal: AbortSignal | undefined,
    deadlineMs: number,
    invoke: UnaryInvoke<Res>,
  ): Promise<Res> {
    return callUnary(
      { op: `lathens.grpc.${method}`, refs, signal, deadlineMs, metadata: bearerMetadata(this.token) },
      invoke,
    );
  }
}
