import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  InMemorySpanExporter,
  type ReadableSpan,
  type Sampler,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

export interface InMemoryTracing {
  /** Every span ended so far. */
  spans(): ReadableSpan[];
  /** Forgets the spans ended so far. */
  reset(): void;
  stop(): Promise<void>;
}

/**
 * Tracing in the test process, as the apps have it (the SDK's context manager and W3C
 * propagation), with spans kept in memory. No instrumentation: the code under test makes its
 * own spans, or the test does. One per test file (it registers the process's globals).
 */
export function startInMemoryTracing(options: { sampler?: Sampler } = {}): InMemoryTracing {
  const exporter = new InMemorySpanExporter();
  const sdk = new NodeSDK({
    serviceName: 'test',
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    ...(options.sampler ? { sampler: options.sampler } : {}),
    instrumentations: [],
    metricReaders: [],
    logRecordProcessors: [],
    autoDetectResources: false,
  });
  sdk.start();
  return {
    spans: () => exporter.getFinishedSpans(),
    reset: () => exporter.reset(),
    stop: () => sdk.shutdown(),
  };
}
