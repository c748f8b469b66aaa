import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AdminAuthConfig } from './admin-auth-config';
import { sendText } from './service-app';

export interface AdminAuthOptions {
  /** The HTTP Basic user name. @default 'admin' */
  user?: string;
  /** HTTP Basic password; unset: Basic is not offered. */
  password?: string;
  /** Bearer token; unset: Bearer is not accepted. */
  token?: string;
  /**
   * With neither a password nor a token, let every request through (the configuration allows
   * this on a loopback address only). Otherwise such pages are off (404). @default false
   */
  allowUnauthenticated?: boolean;
  /** The realm of the challenge. @default 'modproxy admin' */
  realm?: string;
}

/** What a guard does with requests: ask for credentials, let everyone in, or hide the pages. */
export type AdminAuthMode = 'credentials' | 'open' | 'off';

/** Methods that never change anything, so a cross-site request for them is harmless. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Who may see an admin page (crathens' queue dashboard, the proxy's status page): HTTP Basic
 * with ADMIN_USER and ADMIN_PASSWORD (what a browser prompts for) or `Authorization: Bearer
 * <ADMIN_TOKEN>`, compared in constant time. A request without valid credentials gets 401 with a
 * `WWW-Authenticate` challenge for each scheme that is configured. Without any credential the
 * pages are off (404) unless explicitly opened, which configuration allows on loopback only.
 *
 * A browser sends cached Basic credentials with any request to the origin, a forged cross-site
 * form included, so requests that may change something (every method but GET, HEAD and OPTIONS)
 * must come from the page itself: `Sec-Fetch-Site` same-origin, or, from a browser that does not
 * send it, an `Origin` naming this host.
 */
export class AdminAuth {
  readonly mode: AdminAuthMode;
  readonly schemes: ReadonlyArray<'Basic' | 'Bearer'>;
  private readonly user: Buffer;
  private readonly password: Buffer | undefined;
  private readonly token: Buffer | undefined;
  private readonly challenges: string[];

  constructor(options: AdminAuthOptions) {
    this.user = digest(options.user ?? 'admin');
    this.password = options.password === undefined ? undefined : digest(options.password);
    this.token = options.token === undefined ? undefined : digest(options.token);
    const schemes: Array<'Basic' | 'Bearer'> = [];
    if (this.password) schemes.push('Basic');
    if (this.token) schemes.push('Bearer');
    this.schemes = schemes;
    const realm = (options.realm ?? 'modproxy admin').replace(/["\\]/g, '');
    this.challenges = schemes.map((scheme) =>
      scheme === 'Basic' ? `Basic realm="${realm}", charset="UTF-8"` : `Bearer realm="${realm}"`,
    );
    this.mode = schemes.length > 0 ? 'credentials' : options.allowUnauthenticated ? 'open' : 'off';
  }

  /** The guard ADMIN_USER, ADMIN_PASSWORD, ADMIN_TOKEN and ADMIN_ALLOW_UNAUTHENTICATED describe. */
  static fromConfig(config: AdminAuthConfig): AdminAuth {
    return new AdminAuth({
      user: config.ADMIN_USER,
      ...(config.ADMIN_PASSWORD === undefined ? {} : { password: config.ADMIN_PASSWORD }),
      ...(config.ADMIN_TOKEN === undefined ? {} : { token: config.ADMIN_TOKEN }),
      allowUnauthenticated: config.ADMIN_ALLOW_UNAUTHENTICATED,
    });
  }

  /** Express middleware in front of the pages it guards. */
  readonly guard: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    if (this.mode === 'off') return sendText(res, 404, 'not found\n');
    if (!SAFE_METHODS.has(req.method) && isCrossSite(req)) {
      return sendText(res, 403, 'cross-site request refused\n');
    }
    if (this.mode === 'open' || this.accepts(req.headers.authorization)) return next();
    res.setHeader('WWW-Authenticate', this.challenges);
    sendText(res, 401, 'authentication required\n');
  };

  /** Whether an `Authorization` header value carries valid credentials. */
  accepts(authorization: string | undefined): boolean {
    if (this.mode !== 'credentials' || authorization === undefined) return false;
    const match = /^\s*(\S+)\s+(\S+)\s*$/.exec(authorization);
    if (!match) return false;
    const [, scheme = '', credentials = ''] = match;
    switch (scheme.toLowerCase()) {
      case 'basic': {
        if (!this.password) return false;
        const decoded = Buffer.from(credentials, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) return false;
        // Both compared, whichever is wrong, so timing does not tell the user name.
        const userMatches = timingSafeEqual(digest(decoded.slice(0, colon)), this.user);
        const passwordMatches = timingSafeEqual(digest(decoded.slice(colon + 1)), this.password);
        return userMatches && passwordMatches;
      }
      case 'bearer':
        return this.token !== undefined && timingSafeEqual(digest(credentials), this.token);
      default:
        return false;
    }
  }
}

/** Equal-length values for `timingSafeEqual`, whatever the lengths of what is compared. */
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function isCrossSite(req: Request): boolean {
  const site = req.headers['sec-fetch-site'];
  // Behind a reverse proxy that rewrites Host, only the browser's own word is reliable.
  if (typeof site === 'string') return site !== 'same-origin' && site !== 'none';
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    // `Origin: null` (a sandboxed frame, a file) is never this page.
    return true;
  }
}
