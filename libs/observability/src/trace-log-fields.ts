import { isSpanContextValid, trace, TraceFlags } from '@opentelemetry/api';

/** What a log line carries to be found from its trace and the other way round. */
export interface TraceLogFields {
  trace_id?: string;
  span_id?: string;
  /** `01` when the trace is sampled (exported, if export is configured), `00` otherwise. */
  trace_flags?: string;
}

/**
 * The ids of the span active where a line is written, read from OpenTelemetry's context (set by
 * the instrumentation around requests, gRPC calls and jobs); none outside any span or when
 * tracing is off.
 */
export function traceLogFields(): TraceLogFields {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const context = span.spanContext();
  if (!isSpanContextValid(context)) return {};
  return {
    trace_id: context.traceId,
    span_id: context.spanId,
    trace_flags: (context.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED ? '01' : '00',
  };
}
