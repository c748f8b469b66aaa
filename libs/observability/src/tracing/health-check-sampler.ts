import { type Attributes, type Context, type Link, SpanKind } from '@opentelemetry/api';
import { type Sampler, SamplingDecision, type SamplingResult } from '@opentelemetry/sdk-trace-base';

/** Paths that probes and scrapers hit every few seconds on every replica. */
export const HEALTH_CHECK_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

/** The gRPC instrumentation names spans `grpc.<service>/<method>`. */
const GRPC_HEALTH_SPAN = /^grpc\.grpc\.health\.v1\.Health\//;

/**
 * Drops health-check and metrics-scrape spans, and everything they cause. Dropping them here,
 * rather than not instrumenting those requests, keeps their context: a readiness check's call to
 * the storage service carries a not-sampled `traceparent`, so storage drops its spans of that
 * call too instead of starting a trace of its own every few seconds. Every other span is decided
 * by `delegate`.
 */
export class HealthCheckSampler implements Sampler {
  constructor(private readonly delegate: Sampler) {}

  shouldSample(
    context: Context,
    traceId: string,
    spanName: string,
    spanKind: SpanKind,
    attributes: Attributes,
    links: Link[],
  ): SamplingResult {
    if (isHealthCheck(spanName, spanKind, attributes)) return { decision: SamplingDecision.NOT_RECORD };
    return this.delegate.shouldSample(context, traceId, spanName, spanKind, attributes, links);
  }

  toString(): string {
    return `HealthCheckSampler{${this.delegate.toString()}}`;
  }
}

function isHealthCheck(spanName: string, spanKind: SpanKind, attributes: Attributes): boolean {
  if (GRPC_HEALTH_SPAN.test(spanName)) return true;
  if (spanKind !== SpanKind.SERVER) return false;
  // `url.path` in the stable HTTP conventions, `http.target` (with the query) in the old ones.
  const path = attributes['url.path'] ?? attributes['http.target'];
  return typeof path === 'string' && HEALTH_CHECK_PATHS.has(path.split('?')[0] ?? '');
}
