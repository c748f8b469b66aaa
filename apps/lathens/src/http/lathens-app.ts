import express, { type NextFunction, type Request, type Response } from 'express';
import { httpStatusForKind, isModuleError } from '@modproxy/errors';
import type { HttpMetrics, Logger } from '@modproxy/observability';
import type { VersionsProvider } from '@modproxy/versions';
import { parseVersionsPath } from './module-path';

export interface LathensAppOptions {
  versions: VersionsProvider;
  logger: Logger;
  metrics: HttpMetrics;
  /** Resolves when lathens can serve from its cache (Redis reachable); rejects with the reason otherwise. */
  readiness: () => Promise<void>;
  isShuttingDown: () => boolean;
  /** `Cache-Control: max-age` of answers, in seconds: the soft TTL. */
  maxAgeSeconds: number;
}

/**
 * Plain HTTP in the GOPROXY protocol for list and latest only, so lathens can stand in
 * front of any GOPROXY: `GOPROXY=http://lathens,https://proxy.example` takes list/latest from
 * lathens and falls through to the next proxy for everything else (404 here).
 */
export function createLathensApp(options: LathensAppOptions): express.Express {
  const { versions, logger, metrics } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const stop = metrics.duration.startTimer();
    res.on('finish', () => {
      const route = String(res.locals['route'] ?? 'other');
      stop({ route, method: req.method });
      metrics.requests.inc({ route, method: req.method, status: String(res.statusCode) });
      const level = res.statusCode >= 500 ? 'warn' : 'debug';
      logger[level]({ method: req.method, path: req.path, status: res.statusCode, route }, 'request');
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.locals['route'] = 'healthz';
    sendText(res, 200, 'ok\n');
  });

  app.get('/readyz', async (_req, res) => {
    res.locals['route'] = 'readyz';
    if (options.isShuttingDown()) return sendText(res, 503, 'shutting down\n');
    try {
      await options.readiness();
      sendText(res, 200, 'ok\n');
    } catch (error) {
      sendText(res, 503, `not ready: ${(error as Error).message}\n`);
    }
  });

  app.get('/metrics', async (_req, res) => {
    res.locals['route'] = 'metrics';
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });

  app.use(async (req, res, next) => {
    const request = parseVersionsPath(req.path);
    if (!request) return next();
    res.locals['route'] = request.kind;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendText(res, 405, 'method not allowed\n');
    }
    const signal = requestSignal(res);
    const answer =
      request.kind === 'list'
        ? await versions.list(request.module, { signal })
        : await versions.latest(request.module, { signal });
    res.status(200);
    res.setHeader('Cache-Control', `public, max-age=${options.maxAgeSeconds}`);
    res.setHeader('X-Modproxy-Source', answer.source);
    if (answer.stale) res.setHeader('X-Modproxy-Stale', 'true');
    if ('versions' in answer) {
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.send(answer.versions.map((version) => `${version}\n`).join(''));
    } else {
      res.setHeader('Content-Type', 'application/json');
      res.send(answer.info);
    }
  });

  app.use((_req: Request, res: Response) => {
    sendText(res, 404, 'not found\n');
  });

  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (isModuleError(error)) {
      const status = httpStatusForKind(error.kind);
      if (status >= 500) logger.warn({ err: error, op: error.op, path: req.path }, 'request failed');
      if (res.headersSent) return res.destroy();
      return sendText(res, status, `${error.message}\n`);
    }
    logger.error({ err: error, path: req.path }, 'unexpected error');
    if (res.headersSent) return res.destroy();
    sendText(res, 500, 'internal error\n');
  });

  return app;
}

function requestSignal(res: Response): AbortSignal {
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}

function sendText(res: Response, status: number, body: string): void {
  res.status(status);
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  if (status >= 400) res.setHeader('Cache-Control', 'no-store');
  res.send(body);
}
