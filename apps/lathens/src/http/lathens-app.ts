import type express from 'express';
import {
  allowReadOnly,
  createServiceApp,
  finishServiceApp,
  parseGoproxyPath,
  requestSignal,
  sendVersionsAnswer,
  type ServiceAppOptions,
} from '@modproxy/http';
import type { ModuleFilter } from '@modproxy/gomod';
import type { VersionsProvider } from '@modproxy/versions';

export interface LathensAppOptions extends ServiceAppOptions {
  versions: VersionsProvider;
  /**
   * Modules refused with 403 on every GOPROXY path, list and latest as well as the paths lathens
   * does not serve (which would otherwise answer 404 and let the go command fall through to
   * the next proxy for them). @default none refused
   */
  moduleFilter?: ModuleFilter;
  /** `Cache-Control: max-age` of answers, in seconds: the soft TTL. */
  maxAgeSeconds: number;
}

/**
 * Plain HTTP in the GOPROXY protocol for list and latest only, so lathens can stand in
 * front of any GOPROXY: `GOPROXY=http://lathens,https://proxy.example` takes list/latest from
 * lathens and falls through to the next proxy for everything else (404 here).
 */
export function createLathensApp(options: LathensAppOptions): express.Express {
  const { versions } = options;
  const app = createServiceApp(options);
  app.use(async (req, res, next) => {
    const request = parseGoproxyPath(req.path);
    if (request && options.moduleFilter) {
      options.moduleFilter.check(`lathens.http.${request.kind}`, request.module);
    }
    if (!request || (request.kind !== 'list' && request.kind !== 'latest')) return next();
    res.locals['route'] = request.kind;
    if (!allowReadOnly(req, res)) return;
    const signal = requestSignal(res);
    const answer =
      request.kind === 'list'
        ? await versions.list(request.module, { signal })
        : await versions.latest(request.module, { signal });
    sendVersionsAnswer(res, answer, options.maxAgeSeconds);
  });
  return finishServiceApp(app, options.logger);
}
