import type { ServerResponse } from 'node:http';
import type { Span } from '@opentelemetry/api';
import {
  getNodeAutoInstrumentations,
  type InstrumentationConfigMap,
} from '@opentelemetry/auto-instrumentations-node';

type InstrumentationName = keyof InstrumentationConfigMap;
type ExpressConfig = NonNullable<InstrumentationConfigMap['@opentelemetry/instrumentation-express']>;

/**
 * Every auto-instrumentation the package ships, on or off. The list is complete by type: an
 * upgrade that adds one fails the typecheck here instead of switching it on unseen. On: what
 * these apps talk through. Off: fs, dns and net (a span per file read, lookup and socket, around
 * spans that already say more), pino (log lines get their trace ids from our own mixin and are
 * not sent as OTLP logs), and every library the apps do not use.
 */
const ENABLED: Record<InstrumentationName, boolean> = {
  '@opentelemetry/instrumentation-http': true,
  '@opentelemetry/instrumentation-express': true,
  '@opentelemetry/instrumentation-grpc': true,
  '@opentelemetry/instrumentation-ioredis': true,
  '@opentelemetry/instrumentation-mongodb': true,
  '@opentelemetry/instrumentation-fs': false,
  '@opentelemetry/instrumentation-dns': false,
  '@opentelemetry/instrumentation-net': false,
  '@opentelemetry/instrumentation-pino': false,
  '@opentelemetry/instrumentation-amqplib': false,
  '@opentelemetry/instrumentation-aws-lambda': false,
  '@opentelemetry/instrumentation-aws-sdk': false,
  '@opentelemetry/instrumentation-bunyan': false,
  '@opentelemetry/instrumentation-cassandra-driver': false,
  '@opentelemetry/instrumentation-connect': false,
  '@opentelemetry/instrumentation-cucumber': false,
  '@opentelemetry/instrumentation-dataloader': false,
  '@opentelemetry/instrumentation-generic-pool': false,
  '@opentelemetry/instrumentation-graphql': false,
  '@opentelemetry/instrumentation-hapi': false,
  '@opentelemetry/instrumentation-host-metrics': false,
  '@opentelemetry/instrumentation-kafkajs': false,
  '@opentelemetry/instrumentation-knex': false,
  '@opentelemetry/instrumentation-koa': false,
  '@opentelemetry/instrumentation-lru-memoizer': false,
  '@opentelemetry/instrumentation-memcached': false,
  '@opentelemetry/instrumentation-mongoose': false,
  '@opentelemetry/instrumentation-mysql': false,
  '@opentelemetry/instrumentation-mysql2': false,
  '@opentelemetry/instrumentation-nestjs-core': false,
  '@opentelemetry/instrumentation-openai': false,
  '@opentelemetry/instrumentation-oracledb': false,
  '@opentelemetry/instrumentation-pg': false,
  '@opentelemetry/instrumentation-redis': false,
  '@opentelemetry/instrumentation-restify': false,
  '@opentelemetry/instrumentation-router': false,
  '@opentelemetry/instrumentation-runtime-node': false,
  '@opentelemetry/instrumentation-socket.io': false,
  '@opentelemetry/instrumentation-tedious': false,
  '@opentelemetry/instrumentation-undici': false,
  '@opentelemetry/instrumentation-winston': false,
};

/** The instrumentation names that are on, for tests and the start-up log. */
export const ENABLED_INSTRUMENTATIONS: readonly string[] = Object.entries(ENABLED)
  .filter(([, on]) => on)
  .map(([name]) => name);

/** The instrumentations of every app, configured. */
export function createInstrumentations(): ReturnType<typeof getNodeAutoInstrumentations> {
  const configs: InstrumentationConfigMap = {};
  for (const [name, enabled] of Object.entries(ENABLED) as Array<[InstrumentationName, boolean]>) {
    if (!enabled) configs[name] = { enabled: false };
  }
  configs['@opentelemetry/instrumentation-http'] = {
    // Only inside a request or a job: an outgoing call with no parent is the SDK's or a timer's.
    requireParentforOutgoingSpans: true,
    applyCustomAttributesOnSpan: nameServerSpanByRoute,
  };
  configs['@opentelemetry/instrumentation-express'] = {
    // Every app.use() would be a span named `middleware - <anonymous>`; the HTTP span is named
    // by route instead (below).
    ignoreLayersType: ['middleware', 'router'] as unknown as ExpressConfig['ignoreLayersType'],
  };
  // A Redis or MongoDB command outside any request or job is BullMQ polling, lathens' timers or
  // a readiness ping: a one-span trace every few seconds that says nothing.
  configs['@opentelemetry/instrumentation-ioredis'] = { requireParentSpan: true };
  configs['@opentelemetry/instrumentation-mongodb'] = { requireParentSpan: true };
  return getNodeAutoInstrumentations(configs);
}

/**
 * Names an HTTP server span after the route template the app set (`res.locals.route`, the
 * same bounded label as the request metrics: `GET zip`, never a module path).
 */
function nameServerSpanByRoute(span: Span, request: unknown, response: unknown): void {
  const locals = (response as ServerResponse & { locals?: Record<string, unknown> }).locals;
  const route = locals?.['route'];
  if (typeof route !== 'string') return;
  const method = (request as { method?: string }).method ?? 'GET';
  span.updateName(`${method} ${route}`);
  span.setAttribute('http.route', route);
}
