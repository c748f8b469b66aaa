import type express from 'express';
import type { Request, Response } from 'express';
import {
  allowReadOnly,
  createServiceApp,
  finishServiceApp,
  type GoproxyRequest,
  parseGoproxyPath,
  requestSignal,
  sendVersionsAnswer,
  type ServiceAppOptions,
} from '@modproxy/http';
import { isRedirectToUpstream, type ModuleFeeds, type ModuleService } from '@modproxy/module-service';
import { addFeedRoutes } from './feed-routes';
import { ZipDownloads } from './zip-downloads';

export interface ProxyAppOptions extends ServiceAppOptions {
  service: ModuleService;
  /** `/catalog` and `/index`. */
  feeds: ModuleFeeds;
  /** A canonical version's .info, .mod or .zip was answered: what storage held, or fetched for it. */
  onServed?(endpoint: 'info' | 'mod' | 'zip', source: 'storage' | 'fetched'): void;
}

/** Immutable content (a canonical version's info, go.mod, zip) never changes: cache it for good. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** list and latest move as new versions are tagged. */
const SHORT_SECONDS = 60;

export function createProxyApp(options: ProxyAppOptions): express.Express {
  const app = createServiceApp(options);
  const zips = new ZipDownloads({ logger: options.logger, registry: options.metrics.registry });
  addFeedRoutes(app, options.feeds);
  app.use(async (req, res, next) => {
    if (!allowReadOnly(req, res)) return;
    const request = parseGoproxyPath(req.path);
    if (!request) return next();
    res.locals['route'] = request.kind;
    try {
      await serveGoproxy(options, zips, request, req, res);
    } catch (error) {
      if (!isRedirectToUpstream(error)) throw error;
      redirect(res, `${error.baseUrl}${req.path}`);
    }
  });
  return finishServiceApp(app, options.logger);
}

async function serveGoproxy(
  options: ProxyAppOptions,
  zips: ZipDownloads,
  request: GoproxyRequest,
  req: Request,
  res: Response,
): Promise<void> {
  const { service } = options;
  const signal = requestSignal(res);
  // Whether this answer is what storage held or what this request had fetched (the warm
  // command tells "already there" from "fetched" by it).
  let fetched = false;
  const read = { signal, onFetched: () => (fetched = true) };
  const source = (endpoint: 'info' | 'mod' | 'zip') => {
    res.setHeader('X-Modproxy-Source', fetched ? 'upstream' : 'storage');
    options.onServed?.(endpoint, fetched ? 'fetched' : 'storage');
  };
  switch (request.kind) {
    case 'list':
      return sendVersionsAnswer(res, await service.list(request.module, { signal }), SHORT_SECONDS);
    case 'latest':
      return sendVersionsAnswer(res, await service.latest(request.module, { signal }), SHORT_SECONDS);
    case 'info': {
      const { info, immutable } = await service.info(request.module, request.version, read);
      res.setHeader('Cache-Control', immutable ? IMMUTABLE : `public, max-age=${SHORT_SECONDS}`);
      if (immutable) source('info');
      return sendBytes(res, 'application/json', info);
    }
    case 'mod': {
      const mod = await service.mod(request.module, request.version, read);
      res.setHeader('Cache-Control', IMMUTABLE);
      source('mod');
      return sendBytes(res, 'text/plain; charset=utf-8', mod);
    }
    case 'zip': {
      const zip = await service.zip(request.module, request.version, read);
      res.status(200);
      source('zip');
      res.setHeader('Content-Type', 'application/zip');
      res.setHeader('Content-Length', String(zip.size));
      res.setHeader('Cache-Control', IMMUTABLE);
      if (req.method === 'HEAD') {
        zip.stream.destroy();
        res.end();
        return;
      }
      return zips.send(res, zip, request.module, request.version);
    }
  }
}

/**
 * A miss the download mode leaves to another proxy: 302, as the decision may change (once the
 * version is stored it is served here), so neither the go command nor a cache keeps it.
 */
function redirect(res: Response, location: string): void {
  res.status(302);
  res.setHeader('Location', location);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.send(`see ${location}\n`);
}

function sendBytes(res: Response, contentType: string, body: Buffer): void {
  res.status(200);
  res.setHeader('Content-Type', contentType);
  res.send(body);
}
