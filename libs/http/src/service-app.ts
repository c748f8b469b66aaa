import express, { type NextFunction, type Request, type Response } from 'express';
import type { ServerResponse } from 'node:http';
import { redactText } from '@modproxy/config';
import { answerError } from './error-answer';
import { type HttpMetrics, type Logger, withLogFields } from '@modproxy/observability';
import { trackRequest } from './request-tracking';

export interface ServiceAppOptions {
  logger: Logger;
  metrics: HttpMetrics;
  /**
   * Resolves with a one-line status when the service can serve (`ok`, or `degraded: …` when it
   * serves with a dependency down); rejects with the reason when it cannot.
   */
  readiness: () => Promise<string>;
  /** True once shutdown began: readiness fails so load balancers stop sending traffic. */
  isShuttingDown: () => boolean;
  /**
   * What `/metrics` answers, in the registry's content type (a cluster worker's: every process's
   * metrics, aggregated). Default: `metrics.registry`'s.
   */
  scrapeMetrics?: () => Promise<string>;
}

/**
 * An Express app with what every HTTP service here has: a request id (the incoming
 * `X-Request-Id` when sane, otherwise a new one; echoed in the response and on every log line
 * written while the request is handled), request metrics and logs labelled by route template
 * (set `res.locals.route`), `/healthz`, `/readyz`, `/metrics`. Add the service's routes, then
 * call {@link finishServiceApp}.
 */
export function createServiceApp(options: ServiceAppOptions): express.Express {
  const { logger, metrics } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const requestId = trackRequest(req, res, req.path, metrics, logger);
    withLogFields({ request_id: requestId }, next);
  });

  app.get('/healthz', (_req, res) => {
    res.locals['route'] = 'healthz';
    sendText(res, 200, 'ok\n');
  });

  app.get('/readyz', async (_req, res) => {
    res.locals['route'] = 'readyz';
    if (options.isShuttingDown()) return sendText(res, 503, 'shutting down\n');
    try {
      sendText(res, 200, `${await options.readiness()}\n`);
    } catch (error) {
      sendText(res, 503, `not ready: ${redactText((error as Error).message)}\n`);
    }
  });

  app.get('/metrics', async (_req, res) => {
    res.locals['route'] = 'metrics';
    const text = await (options.scrapeMetrics ?? (() => metrics.registry.metrics()))();
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.send(text);
  });
  return app;
}

/**
 * 404 for every other path and the one error mapping: domain errors become their status with a
 * text/plain body (the go command prints it); anything else is a logged 500 without details.
 */
export function finishServiceApp(app: express.Express, logger: Logger): express.Express {
  app.use((_req: Request, res: Response) => {
    sendText(res, 404, 'not found\n');
  });
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    answerError(res, error, logger, req.path);
  });
  return app;
}

/** Aborts when the client disconnects before the answer is complete. */
export function requestSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}

export function sendText(res: Response, status: number, body: string): void {
  res.status(status);
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  if (status >= 400) res.setHeader('Cache-Control', 'no-store');
  res.send(body);
}

/** Refuses anything but GET and HEAD with 405; returns whether the request may go on. */
export function allowReadOnly(req: Request, res: Response): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return true;
  res.setHeader('Allow', 'GET, HEAD');
  sendText(res, 405, 'method not allowed\n');
  return false;
}

/**
 * A `/@v/list` or `/@latest` answer in the GOPROXY format, saying where it came from and
 * whether upstream could not confirm it.
 */
export function sendVersionsAnswer(
  res: Response,
  answer: { source: string; stale: boolean } & ({ versions: string[] } | { info: Buffer }),
  maxAgeSeconds: number,
): void {
  res.status(200);
  res.setHeader('Cache-Control', `public, max-age=${maxAgeSeconds}`);
  res.setHeader('X-Modproxy-Source', answer.source);
  if (answer.stale) res.setHeader('X-Modproxy-Stale', 'true');
  if ('versions' in answer) {
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.send(answer.versions.map((version) => `${version}\n`).join(''));
  } else {
    res.setHeader('Content-Type', 'application/json');
    res.send(answer.info);
  }
}
