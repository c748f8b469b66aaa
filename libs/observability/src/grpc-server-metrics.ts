import { Counter, Histogram, type Registry } from 'prom-client';

/** What a gRPC server reports of each call (the shape of libs/storage-grpc's `GrpcServedCall`). */
export interface GrpcCallSample {
  method: string;
  code: string;
  durationMs: number;
}

/**
 * `<prefix>_grpc_server_handled_total` and `<prefix>_grpc_server_handling_seconds`, by method
 * and status code (health checks are not counted). Returns the listener to give to the server
 * (`onCall`).
 */
export function createGrpcServerMetrics(registry: Registry, prefix: string): (call: GrpcCallSample) => void {
  const labelNames = ['method', 'code'] as const;
  const handled = new Counter({
    name: `${prefix}_grpc_server_handled_total`,
    help: 'gRPC calls answered, by method and status code',
    labelNames,
    registers: [registry],
  });
  const handling = new Histogram({
    name: `${prefix}_grpc_server_handling_seconds`,
    help: 'How long gRPC calls took from start to status, by method and status code',
    labelNames,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  return (call) => {
    const labels = { method: call.method, code: call.code };
    handled.inc(labels);
    handling.observe(labels, call.durationMs / 1_000);
  };
}
