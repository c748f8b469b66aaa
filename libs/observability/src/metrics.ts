import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

export { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface HttpMetrics {
  registry: Registry;
  requests: Counter<'route' | 'method' | 'status'>;
  duration: Histogram<'route' | 'method' | 'status'>;
}

/**
 * A registry per app (never the global one), with process metrics and the HTTP request
 * metrics every app exposes. Labels are route templates, never module paths, so the number
 * of series stays bounded.
 */
export function createHttpMetrics(prefix: string): HttpMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: `${prefix}_` });
  const requests = new Counter({
    name: `${prefix}_http_requests_total`,
    help: 'HTTP requests by route template, method and status code',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${prefix}_http_request_duration_seconds`,
    help: 'HTTP request latency by route template, method and status code',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  return { registry, requests, duration };
}
