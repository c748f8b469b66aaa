import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitUntil } from './wait-until';

/** One span as a collector receives it, flattened from OTLP/JSON. */
export interface ReceivedSpan {
  /** The `service.name` of the process that sent it. */
  service: string;
  traceId: string;
  spanId: string;
  /** Empty for a trace's root span. */
  parentSpanId: string;
  name: string;
  kind: 'internal' | 'server' | 'client' | 'producer' | 'consumer' | 'unspecified';
  attributes: Record<string, unknown>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  /** The instrumentation scope (`@opentelemetry/instrumentation-http`, `@modproxy/queue`, …). */
  scope: string;
}

export interface OtlpReceiver {
  /** What goes into `OTEL_EXPORTER_OTLP_ENDPOINT` (with `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`). */
  endpoint: string;
  /** Every span received so far. */
  spans(): ReceivedSpan[];
  /** How many export requests arrived (any content). */
  exports(): number;
  /** Resolves once `check` holds for the spans received. */
  waitForSpans(check: (spans: ReceivedSpan[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** The raw bodies, to search for secrets. */
  rawBodies(): string[];
  /** The headers of each trace export request (the configured OTLP headers arrive here). */
  requestHeaders(): Array<Record<string, string | string[] | undefined>>;
  close(): Promise<void>;
}

const KINDS: ReceivedSpan['kind'][] = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  attributes?: OtlpAttribute[];
  status?: { code?: number };
}
interface OtlpExport {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: Array<{ scope?: { name?: string }; spans?: OtlpSpan[] }>;
  }>;
}

function valueOf(value: OtlpValue): unknown {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(valueOf);
  return undefined;
}

function attributesOf(attributes: OtlpAttribute[] | undefined): Record<string, unknown> {
  return Object.fromEntries((attributes ?? []).map((attribute) => [attribute.key, valueOf(attribute.value)]));
}

/** Span and trace ids arrive as hex (the JS exporter) or base64 (the OTLP/JSON spec's bytes). */
function hexId(id: string | undefined): string {
  if (!id) return '';
  return /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

/**
 * A loopback OTLP/HTTP trace receiver, the collector of the tests: apps started with
 * `OTEL_EXPORTER_OTLP_ENDPOINT=<endpoint>` and `OTEL_EXPORTER_OTLP_PROTOCOL=http/json` send it
 * their spans, which it decodes and keeps. Anything but JSON on `/v1/traces` is refused (415,
 * 404), so a test configured for another protocol fails instead of waiting.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const bodies: string[] = [];
  const headers: Array<Record<string, string | string[] | undefined>> = [];
  let exports = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      exports += 1;
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
        res.writeHead(415).end();
        return;
      }
      const text = Buffer.concat(chunks).toString('utf8');
      bodies.push(text);
      headers.push({ ...req.headers });
      let request: OtlpExport;
      try {
        request = JSON.parse(text) as OtlpExport;
      } catch {
        res.writeHead(400).end();
        return;
      }
      for (const resource of request.resourceSpans ?? []) {
        const service = String(attributesOf(resource.resource?.attributes)['service.name'] ?? '');
        for (const scope of resource.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            spans.push({
              service,
              traceId: hexId(span.traceId),
              spanId: hexId(span.spanId),
              parentSpanId: hexId(span.parentSpanId),
              name: span.name,
              kind: KINDS[span.kind ?? 0] ?? 'unspecified',
              attributes: attributesOf(span.attributes),
              statusCode: span.status?.code ?? 0,
              scope: scope.scope?.name ?? '',
            });
          }
        }
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans: () => [...spans],
    exports: () => exports,
    rawBodies: () => [...bodies],
    requestHeaders: () => [...headers],
    waitForSpans: (check, what, timeoutMs = 30_000) =>
      waitUntil(() => check(spans), { what, timeoutMs, intervalMs: 50 }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
