import { trace } from '@opentelemetry/api';

/** How long graceful shutdown waits for the last spans to be sent. */
export const TELEMETRY_FLUSH_TIMEOUT_MS = 5_000;

interface Flushable {
  shutdown(): Promise<void>;
}

/**
 * Flushes and shuts down the tracer provider the instrument entry registered (found through the
 * OpenTelemetry API's global, as the entry is a bundle of its own): the spans of the last
 * requests are sent before the process exits. Waits at most `timeoutMs` (a collector that does
 * not answer must not hold the shutdown); resolves whether or not tracing is on.
 */
export async function shutdownTelemetry(timeoutMs = TELEMETRY_FLUSH_TIMEOUT_MS): Promise<void> {
  const provider: unknown = trace.getTracerProvider();
  const delegate =
    provider && typeof (provider as { getDelegate?: unknown }).getDelegate === 'function'
      ? (provider as { getDelegate(): unknown }).getDelegate()
      : provider;
  if (!delegate || typeof (delegate as Partial<Flushable>).shutdown !== 'function') return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    (delegate as Flushable).shutdown().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}
