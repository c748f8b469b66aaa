import {
  Counter,
  createGrpcServerMetrics,
  createHttpMetrics,
  Gauge,
  type HttpMetrics,
} from '@modproxy/observability';
import type { GrpcServedCall } from '@modproxy/grpc';
import type { ZipBytesListener } from '@modproxy/storage-grpc';

/**
 * The storage service's metrics: its admin HTTP port's, the gRPC calls by method and code,
 * storage operations by operation and domain result, zip bytes served and saved, and the
 * backend's readiness. Labels never name a module or a version.
 */
export class StorageMetrics {
  readonly http: HttpMetrics;
  readonly zipBytes: ZipBytesListener;
  private readonly grpcCall: (call: GrpcServedCall) => void;
  private readonly operations: Counter<'op' | 'result'>;
  private readonly ready: Gauge;
  private readonly pings: Counter<'result'>;
  private readonly failuresInRow: Gauge;

  constructor() {
    this.http = createHttpMetrics('modproxy_storage');
    const registers = [this.http.registry];
    this.grpcCall = createGrpcServerMetrics(this.http.registry, 'modproxy_storage');
    this.operations = new Counter({
      name: 'modproxy_storage_operations_total',
      help: 'Storage operations (the gRPC methods: Stat, GetInfo, GetMod, GetZip, Save, List, Delete, Catalog, …) by result: ok or the error kind (not-found, already-exists, timeout, …)',
      labelNames: ['op', 'result'] as const,
      registers,
    });
    const bytes = new Counter({
      name: 'modproxy_storage_zip_bytes_total',
      help: 'Zip bytes by direction: served (sent to GetZip callers) and saved (of uploads that were stored)',
      labelNames: ['direction'] as const,
      registers,
    });
    bytes.inc({ direction: 'served' }, 0);
    bytes.inc({ direction: 'saved' }, 0);
    this.zipBytes = {
      served: (n) => bytes.inc({ direction: 'served' }, n),
      saved: (n) => bytes.inc({ direction: 'saved' }, n),
    };
    this.ready = new Gauge({
      name: 'modproxy_storage_ready',
      help: '1 while the backend answers',
      registers,
    });
    this.pings = new Counter({
      name: 'modproxy_storage_readiness_pings_total',
      help: 'Readiness pings of the backend by result',
      labelNames: ['result'] as const,
      registers,
    });
    this.failuresInRow = new Gauge({
      name: 'modproxy_storage_readiness_consecutive_failures',
      help: 'Readiness pings failed in a row (readiness turns off at READINESS_FAILURES)',
      registers,
    });
  }

  /** For the gRPC server's `onCall`. */
  readonly onCall = (call: GrpcServedCall): void => {
    this.grpcCall(call);
    this.operations.inc({ op: call.method, result: call.result });
  };

  ping(result: string, consecutiveFailures: number): void {
    this.pings.inc({ result });
    this.failuresInRow.set(consecutiveFailures);
  }

  setReady(ready: boolean): void {
    this.ready.set(ready ? 1 : 0);
  }
}
