import type { IncomingMessage, ServerResponse } from 'node:http';
import { answerError, parseGoproxyPath, type RoutedResponse, trackRequest, writeText } from '@modproxy/http';
import { type HttpMetrics, type Logger, withLogFields } from '@modproxy/observability';
import { answerGoproxy, type GoproxyAnswersOptions } from './goproxy-answers';

export interface GoproxyHandlerOptions extends GoproxyAnswersOptions {
  logger: Logger;
  metrics: HttpMetrics;
}

/**
 * The lean path of the GOPROXY reads, in front of the Express app: a GET or HEAD whose path
 * ends like a protocol request (`/@v/list`, `/@latest`, `/@v/….info|.mod|.zip`) is parsed once
 * and answered here, with what Express's middleware gives every request (request id, span
 * attribute, route-labelled metrics and log line, the log scope) and the one error mapping, but
 * without its router, which alone capped a warm request at about a tenth of a bare node:http
 * server. Everything else (health, readiness, metrics, feeds, other methods, paths that only
 * decode to a protocol path) goes to Express, which answers them as it always has.
 */
export class GoproxyHandler {
  constructor(private readonly options: GoproxyHandlerOptions) {}

  /** Answers the request and returns true, or returns false and leaves it to the next handler. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const url = req.url ?? '';
    if (url.charCodeAt(0) !== SLASH) return false;
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (!looksLikeGoproxy(path)) return false;
    const routed = res as RoutedResponse;
    // Read by the request metrics and by the tracing's span name (`GET zip`, never a module path).
    routed.locals = { route: 'other' };
    const { logger, metrics } = this.options;
    const requestId = trackRequest(req, routed, path, metrics, logger);
    withLogFields({ request_id: requestId }, () => {
      this.answer(req, routed, path).catch((error: unknown) => answerError(res, error, logger, path));
    });
    return true;
  }

  private async answer(req: IncomingMessage, res: RoutedResponse, path: string): Promise<void> {
    const request = parseGoproxyPath(path);
    // Shaped like the protocol but not of it (`/@v/.info`): what Express answers such a path.
    if (!request) return writeText(res, 404, 'not found\n');
    if (res.locals) res.locals['route'] = request.kind;
    await answerGoproxy(this.options, request, path, req, res);
  }
}

const SLASH = 0x2f;

/** Cheap suffix checks; parseGoproxyPath decides. */
function looksLikeGoproxy(path: string): boolean {
  if (path.endsWith('/@v/list') || path.endsWith('/@latest')) return true;
  return (path.endsWith('.info') || path.endsWith('.mod') || path.endsWith('.zip')) && path.includes('/@v/');
}
