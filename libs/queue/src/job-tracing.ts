import {
  type Attributes,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { TraceContext } from './job-contracts';

/** What the spans of this library are recorded under. */
const TRACER = '@modproxy/queue';
/** The messaging system, as the messaging conventions name it: no registered value for BullMQ. */
const MESSAGING_SYSTEM = 'bullmq';
/** What job-contracts accepts, so a propagator's extra entries can never make a job invalid. */
const MAX_ENTRIES = 8;
const MAX_KEY = 64;
const MAX_VALUE = 512;

export interface JobSpanRefs {
  queue: string;
  /** The job name (the jobs.v1 message name). */
  name: string;
  /** The BullMQ job id (module@version for fetches). */
  jobId: string | undefined;
}

function messagingAttributes(refs: JobSpanRefs, operation: 'send' | 'process'): Attributes {
  return {
    'messaging.system': MESSAGING_SYSTEM,
    'messaging.operation.type': operation,
    'messaging.operation.name': operation === 'send' ? 'add' : 'process',
    'messaging.destination.name': refs.queue,
    'messaging.bullmq.job.name': refs.name,
    ...(refs.jobId ? { 'messaging.message.id': refs.jobId } : {}),
  };
}

function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
  }
  span.end();
}

/**
 * Runs a job's add inside a PRODUCER span (`send <queue>`), a child of the caller's span, or of
 * `parent` (a trace context the caller was handed) when given. `add` gets the producer span's
 * context as the job's trace context, so the worker's span continues this trace. Only entries
 * the job contracts accept are kept (a huge `tracestate` or baggage from a client's request is
 * dropped, never a reason to refuse the job).
 */
export async function tracedAdd<T>(
  refs: JobSpanRefs,
  parent: TraceContext | undefined,
  add: (traceContext: TraceContext) => Promise<T>,
): Promise<T> {
  const parentContext =
    parent && Object.keys(parent).length > 0
      ? propagation.extract(context.active(), parent)
      : context.active();
  const span = trace
    .getTracer(TRACER)
    .startSpan(
      `send ${refs.queue}`,
      { kind: SpanKind.PRODUCER, attributes: messagingAttributes(refs, 'send') },
      parentContext,
    );
  const spanContext = trace.setSpan(parentContext, span);
  const carrier: Record<string, string> = {};
  propagation.inject(spanContext, carrier);
  const traceContext = boundedTraceContext(carrier);
  try {
    const result = await context.with(spanContext, () => add(traceContext));
    endSpan(span);
    return result;
  } catch (error) {
    endSpan(span, error);
    throw error;
  }
}

/** How a traced attempt ended, for the span: failures are errors, a move back to delayed is not. */
export type TracedOutcome = 'ok' | 'error';

/**
 * Runs one attempt of a job inside a CONSUMER span (`process <queue>`) whose parent is the
 * producer's span, read from the job's trace context: one trace from the request that queued
 * the job to what the worker did for it. Without a trace context the span starts a trace.
 * `outcomeOf` tells a failure from control flow (BullMQ's delayed and waiting errors).
 */
export async function tracedProcess<T>(
  refs: JobSpanRefs & { attempt: number },
  traceContext: TraceContext | undefined,
  run: () => Promise<T>,
  outcomeOf: (error: unknown) => TracedOutcome = () => 'error',
): Promise<T> {
  const parentContext = propagation.extract(ROOT_CONTEXT, traceContext ?? {});
  const span = trace.getTracer(TRACER).startSpan(
    `process ${refs.queue}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: { ...messagingAttributes(refs, 'process'), 'messaging.bullmq.job.attempt': refs.attempt },
    },
    parentContext,
  );
  try {
    const result = await context.with(trace.setSpan(parentContext, span), run);
    endSpan(span);
    return result;
  } catch (error) {
    endSpan(span, outcomeOf(error) === 'error' ? error : undefined);
    throw error;
  }
}

/**
 * The trace context of job data that may not be valid (the worker reads it before the payload
 * is decoded, so an invalid job's failure is in its producer's trace too): string entries only,
 * within the contracts' bounds.
 */
export function rawTraceContext(data: unknown): TraceContext | undefined {
  const value = (data as { traceContext?: unknown } | null)?.traceContext;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  return boundedTraceContext(value as Record<string, unknown>);
}

function boundedTraceContext(entries: Record<string, unknown>): TraceContext {
  const kept: TraceContext = {};
  let count = 0;
  for (const [key, value] of Object.entries(entries)) {
    if (count >= MAX_ENTRIES) break;
    if (typeof value !== 'string' || key.length > MAX_KEY || value.length > MAX_VALUE) continue;
    kept[key] = value;
    count += 1;
  }
  return kept;
}
