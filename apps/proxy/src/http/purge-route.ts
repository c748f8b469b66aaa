import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { errors } from '@modproxy/errors';
import { isCanonicalVersion } from '@modproxy/gomod';
import { answerError, type AdminAuth, parseGoproxyPath, writeText } from '@modproxy/http';
import type { Logger } from '@modproxy/observability';

export interface PurgeRouteOptions {
  /** Deletes module@version from storage and from every replica's content cache. */
  purge(module: string, version: string): Promise<void>;
  auth: AdminAuth;
  logger: Logger;
}

const PREFIX = '/modules';

/**
 * `DELETE /modules/<escaped module>/@v/<escaped version>` on the admin port, behind the admin
 * authentication (unsafe methods from another site refused): the version is deleted from
 * storage and every replica's content cache drops it. 200 when it was deleted, 404 when storage
 * did not have it (the caches were told anyway), 503 with Retry-After when not every replica
 * could be told (purge again). Other requests go on to the next handler.
 */
export function createPurgeRoute(options: PurgeRouteOptions): RequestHandler {
  const { auth, logger } = options;
  const purge = async (req: Request, res: Response): Promise<void> => {
    // The module and version as the GOPROXY protocol escapes them, checked by the same rules.
    const request = parseGoproxyPath(`${req.path.slice(PREFIX.length)}.info`);
    if (request?.kind !== 'info' || !isCanonicalVersion(request.version)) {
      throw errors.invalidArgument(
        'proxy.purge',
        `expected DELETE ${PREFIX}/<escaped module>/@v/<canonical version>`,
      );
    }
    const { module, version } = request;
    await options.purge(module, version);
    logger.info({ module, version }, 'purged from storage and every replica’s content cache');
    writeText(res, 200, `deleted ${module}@${version}; every replica's content cache drops it\n`);
  };
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'DELETE' || !req.path.startsWith(`${PREFIX}/`)) return next();
    auth.guard(req, res, () => {
      purge(req, res).catch((error: unknown) => answerError(res, error, logger, PREFIX));
    });
  };
}
