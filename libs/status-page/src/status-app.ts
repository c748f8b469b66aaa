import express, { type NextFunction, type Request, type Response } from 'express';
import { type AdminAuth, allowReadOnly, sendText } from '@modproxy/http';
import type { Logger } from '@modproxy/observability';
import type { ProxyStatus } from './proxy-status';
import { renderStatusPage } from './status-page-html';

export interface StatusAppOptions {
  status: ProxyStatus;
  /** Who may see the page; off (404) without credentials unless explicitly opened. */
  auth: AdminAuth;
  logger: Logger;
  /** The page's heading. @default 'modproxy status' */
  title?: string;
}

/** The page runs no script and loads nothing: its one style sheet is inline. */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * The status page as an admin HTTP app: `GET /` renders it (HTML, read from the data sources
 * at each request), behind the admin authentication; anything else is 404.
 */
export function createStatusApp(options: StatusAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(options.auth.guard);
  app.all('/', async (req, res) => {
    if (!allowReadOnly(req, res)) return;
    const html = renderStatusPage(await options.status.snapshot(), {
      ...(options.title ? { title: options.title } : {}),
    });
    res.status(200);
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.send(html);
  });
  app.use((_req: Request, res: Response) => sendText(res, 404, 'not found\n'));
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    options.logger.error({ err: error, path: req.path }, 'status page failed');
    if (res.headersSent) return res.destroy();
    sendText(res, 500, 'internal error\n');
  });
  return app;
}
