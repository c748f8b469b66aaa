import { pipeline } from 'node:stream/promises';
import express, { type NextFunction, type Request, type Response } from 'express';
import { httpStatusForKind, isModuleError } from '@modproxy/errors';
import type { ModuleService } from '@modproxy/module-service';
import type { HttpMetrics, Logger } from '@modproxy/observability';
import { type GoproxyRequest, parseGoproxyPath } from './goproxy-path';

export interface ProxyAppOptions {
  service: ModuleService;
  logger: Logger;
  metrics: HttpMetrics;
  /** Resolves when the proxy can serve (storage reachable); rejects with the reason otherwise. */
  readiness: () => Promise<void>;
  /** Set once shutdown begins: readiness fails so load balancers stop sending traffic. */
  isShuttingDown: () => boolean;
}

/** Immutable content (a canonical version's info, go.mod, zip) never changes: cache it for good. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** list and latest move as new versions are tagged. */
const SHORT = 'public, max-age=60';

export function createProxyApp(options: ProxyAppOptions): express.Express {
  const { service, logger, metrics } = options;
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
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendText(res, 405, 'method not allowed\n');
    }
    const request = parseGoproxyPath(req.path);
    if (!request) return next();
    res.locals['route'] = request.kind;
    await serveGoproxy(service, request, req, res);
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

async function serveGoproxy(
  service: ModuleService,
  request: GoproxyRequest,
  req: Request,
  res: Response,
): Promise<void> {
  const signal = requestSignal(res);
  switch (request.kind) {
    case 'list': {
      const answer = await service.list(request.module, { signal });
      setAnswerHeaders(res, answer);
      return sendText(res, 200, answer.versions.map((version) => `${version}\n`).join(''));
    }
    case 'latest': {
      const answer = await service.latest(request.module, { signal });
      setAnswerHeaders(res, answer);
      return sendBytes(res, 'application/json', answer.info);
    }
    case 'info': {
      const { info, immutable } = await service.info(request.module, request.version, { signal });
      res.setHeader('Cache-Control', immutable ? IMMUTABLE : SHORT);
      return sendBytes(res, 'application/json', info);
    }
    case 'mod': {
      const mod = await service.mod(request.module, request.version, { signal });
      res.setHeader('Cache-Control', IMMUTABLE);
      return sendBytes(res, 'text/plain; charset=utf-8', mod);
    }
    case 'zip': {
      const zip = await service.zip(request.module, request.version, { signal });
      res.status(200);
      res.setHeader('Content-Type', 'application/zip');
      res.setHeader('Content-Length', String(zip.size));
      res.setHeader('Cache-Control', IMMUTABLE);
      if (req.method === 'HEAD') {
        zip.stream.destroy();
        res.end();
        return;
      }
      try {
        await pipeline(zip.stream, res);
      } catch (error) {
        // The client went away mid-download: nothing to answer, nothing to log as a failure.
        if (!res.destroyed && !signal.aborted) throw error;
      }
    }
  }
}

/** list and latest say where the answer came from, and whether upstream could not confirm it. */
function setAnswerHeaders(res: Response, answer: { source: string; stale: boolean }): void {
  res.setHeader('Cache-Control', SHORT);
  res.setHeader('X-Modproxy-Source', answer.source);
  if (answer.stale) res.setHeader('X-Modproxy-Stale', 'true');
}

/** Aborts when the client disconnects before the answer is complete. */
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

function sendBytes(res: Response, contentType: string, body: Buffer): void {
  res.status(200);
  res.setHeader('Content-Type', contentType);
  res.send(body);
}
