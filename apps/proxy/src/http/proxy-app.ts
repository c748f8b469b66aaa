import type express from 'express';
import {
  allowReadOnly,
  createServiceApp,
  finishServiceApp,
  parseGoproxyPath,
  type ServiceAppOptions,
} from '@modproxy/http';
import type { ModuleFeeds, ModuleService } from '@modproxy/module-service';
import { addFeedRoutes } from './feed-routes';
import { answerGoproxy } from './goproxy-answers';
import { GoproxyHandler } from './goproxy-handler';
import { ZipDownloads } from './zip-downloads';

export interface ProxyAppOptions extends ServiceAppOptions {
  service: ModuleService;
  /** `/catalog` and `/index`. */
  feeds: ModuleFeeds;
  /** A canonical version's .info, .mod or .zip was answered: what storage held, or fetched for it. */
  onServed?(endpoint: 'info' | 'mod' | 'zip', source: 'storage' | 'fetched'): void;
}

export interface ProxyApp {
  /** Everything but the lean path's requests: health, metrics, feeds, errors. */
  app: express.Express;
  /** The GOPROXY reads, in front of `app`. */
  goproxy: GoproxyHandler;
}

export function createProxyApp(options: ProxyAppOptions): ProxyApp {
  const app = createServiceApp(options);
  const zips = new ZipDownloads({ logger: options.logger, registry: options.metrics.registry });
  const answers = {
    service: options.service,
    zips,
    ...(options.onServed ? { onServed: options.onServed } : {}),
  };
  addFeedRoutes(app, options.feeds);
  // What the lean path leaves here: other methods (405) and protocol paths only their decoding
  // reveals (`%2E`-encoded suffixes); the same answers.
  app.use(async (req, res, next) => {
    if (!allowReadOnly(req, res)) return;
    const request = parseGoproxyPath(req.path);
    if (!request) return next();
    res.locals['route'] = request.kind;
    await answerGoproxy(answers, request, req.path, req, res);
  });
  return {
    app: finishServiceApp(app, options.logger),
    goproxy: new GoproxyHandler({ ...answers, logger: options.logger, metrics: options.metrics }),
  };
}
