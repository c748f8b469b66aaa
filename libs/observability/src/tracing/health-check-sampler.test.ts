import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AlwaysOnSampler, ParentBasedSampler } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { startInMemoryTracing } from '@modproxy/testing';
import { HealthCheckSampler } from './health-check-sampler';

const tracing = startInMemoryTracing({
  sampler: new HealthCheckSampler(new ParentBasedSampler({ root: new AlwaysOnSampler() })),
});
const tracer = trace.getTracer('test');

afterAll(() => tracing.stop());
beforeEach(() => tracing.reset());

/** A server span as the HTTP instrumentation starts it, with a client call made inside it. */
function serve(path: string): Record<string, string> {
  const server = tracer.startSpan('GET', { kind: SpanKind.SERVER, attributes: { 'url.path': path } });
  const headers: Record<string, string> = {};
  context.with(trace.setSpan(context.active(), server), () => {
    const client = tracer.startSpan('grpc.modproxy.storage.v1.StorageService/Exists', {
      kind: SpanKind.CLIENT,
    });
    propagation.inject(trace.setSpan(context.active(), client), headers);
    client.end();
  });
  server.end();
  return headers;
}

describe('HealthCheckSampler', () => {
  it('drops probe and scrape requests and everything they cause', () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) serve(path);
    expect(tracing.spans()).toEqual([]);
  });

  it('passes a not-sampled traceparent on, so the next service drops its spans of the call too', () => {
    const headers = serve('/readyz');
    expect(headers['traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    const remote = propagation.extract(context.active(), headers);
    tracer
      .startSpan('grpc.modproxy.storage.v1.StorageService/Exists', { kind: SpanKind.SERVER }, remote)
      .end();
    expect(tracing.spans()).toEqual([]);
  });

  it('drops gRPC health checks on both sides', () => {
    tracer.startSpan('grpc.grpc.health.v1.Health/Check', { kind: SpanKind.SERVER }).end();
    tracer.startSpan('grpc.grpc.health.v1.Health/Watch', { kind: SpanKind.CLIENT }).end();
    expect(tracing.spans()).toEqual([]);
  });

  it('keeps every other request, with its children in one trace', () => {
    serve('/example.com/mod/@v/v1.0.0.zip');
    // The old conventions' http.target carries the query: a health path with one is still one.
    tracer
      .startSpan('GET', { kind: SpanKind.SERVER, attributes: { 'http.target': '/healthz?verbose=1' } })
      .end();
    // Only server spans are judged by path: a client call to some upstream's /metrics is kept.
    tracer.startSpan('GET', { kind: SpanKind.CLIENT, attributes: { 'url.path': '/metrics' } }).end();
    const spans = tracing.spans();
    expect(spans.map((span) => span.name)).toEqual([
      'grpc.modproxy.storage.v1.StorageService/Exists',
      'GET',
      'GET',
    ]);
    expect(spans[0]?.spanContext().traceId).toBe(spans[1]?.spanContext().traceId);
    expect(spans[0]?.parentSpanContext?.spanId).toBe(spans[1]?.spanContext().spanId);
  });
});
