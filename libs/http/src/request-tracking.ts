import type { IncomingMessage, ServerResponse } from 'node:http';
import { trace } from '@opentelemetry/api';
import type { HttpMetrics, Logger } from '@modproxy/observability';
import { REQUEST_ID_HEADER, requestIdOf } from './request-id';

/** A response whose route template the handler names (`res.locals.route`), as Express keeps it. */
export type RoutedResponse = ServerResponse & { locals?: Record<string, unknown> };

/** Methods a client may send are many (any token); the label keeps the ones HTTP defines. */
const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'CONNECT',
  'TRACE',
]);

export function httpMethodLabel(method: string | undefined): string {
  return method !== undefined && KNOWN_METHODS.has(method) ? method : 'other';
}

/**
 * What every request here gets, on a bare node:http request (Express's first middleware and the
 * proxy's lean GOPROXY path both start with it): its id (the incoming `X-Request-Id` when sane,
 * else a new one) echoed in the response and put on the HTTP span, and once it is answered the
 * request metrics and log line labelled by route template (`res.locals.route`, `other` when
 * none was named). Returns the id, for the request's log scope.
 */
export function trackRequest(
  req: IncomingMessage,
  res: RoutedResponse,
  path: string,
  metrics: HttpMetrics,
  logger: Logger,
): string {
  const requestId = requestIdOf(req.headers['x-request-id']);
  res.setHeader(REQUEST_ID_HEADER, requestId);
  // On the HTTP span too, so a trace is found from the id a user quotes.
  trace.getActiveSpan()?.setAttribute('modproxy.request_id', requestId);
  const started = performance.now();
  res.once('finish', () => {
    const route = String(res.locals?.['route'] ?? 'other');
    const status = res.statusCode;
    const labels = { route, method: httpMethodLabel(req.method), status: statusLabel(status) };
    metrics.duration.observe(labels, (performance.now() - started) / 1_000);
    metrics.requests.inc(labels);
    if (status >= 500 || logger.isLevelEnabled('debug')) {
      logger[status >= 500 ? 'warn' : 'debug'](
        { method: req.method, path, status, route, request_id: requestId },
        'request',
      );
    }
  });
  return requestId;
}

/** The status codes answered most, as labels made once. */
const STATUS_LABELS = new Map(
  [200, 206, 302, 304, 400, 403, 404, 410, 500, 502, 503, 504].map((s) => [s, String(s)]),
);

function statusLabel(status: number): string {
  return STATUS_LABELS.get(status) ?? String(status);
}
