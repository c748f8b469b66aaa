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
import type { ModuleService } from '@modproxy/module-service';
import { ZipDownloads } from './zip-downloads';

export interface ProxyAppOptions extends ServiceAppOptions {
  service: ModuleService;
}

/** Immutable content (a canonical version's info, go.mod, zip) never changes: cache it for good. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** list and latest move as new versions are tagged. */
const SHORT_SECONDS = 60;

export function createProxyApp(options: ProxyAppOptions): express.Express {
  const app = createServiceApp(options);
  const zips = new ZipDownloads({ logger: options.logger, registry: options.metrics.registry });
  app.use(async (req, res, next) => {
    if (!allowReadOnly(req, res)) return;
    const request = parseGoproxyPath(req.path);
    if (!request) return next();
    res.locals['route'] = request.kind;
    await serveGoproxy(options.service, zips, request, req, res);
  });
  return finishServiceApp(app, options.logger);
}

async function serveGoproxy(
  service: ModuleService,
  zips: ZipDownloads,
  request: GoproxyRequest,
  req: Request,
  res: Response,
): Promise<void> {
  const signal = requestSignal(res);
  switch (request.kind) {
    case 'list':
      return sendVersionsAnswer(res, await service.list(request.module, { signal }), SHORT_SECONDS);
    case 'latest':
      return sendVersionsAnswer(res, await service.latest(request.module, { signal }), SHORT_SECONDS);
    case 'info': {
      const { info, immutable } = await service.info(request.module, request.version, { signal });
      res.setHeader('Cache-Control', immutable ? IMMUTABLE : `public, max-age=${SHORT_SECONDS}`);
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
      return zips.send(res, zip, request.module, request.version);
    }
  }
}

function sendBytes(res: Response, contentType: string, body: Buffer): void {
  res.status(200);
  res.setHeader('Content-Type', contentType);
  res.send(body);
}
