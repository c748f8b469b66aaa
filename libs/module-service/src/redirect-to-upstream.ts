/**
 * Not a failure: the download mode says a miss is answered by another proxy. Thrown by
 * {@link ModuleService} for a version it does not hold under `redirect` or `async_redirect`;
 * the transport answers with a redirect to `baseUrl` followed by the request's own path.
 */
export class RedirectToUpstream extends Error {
  override readonly name = 'RedirectToUpstream';

  constructor(
    /** Absolute http(s) base URL of the proxy to send the client to, without a trailing slash. */
    readonly baseUrl: string,
    readonly module: string,
    readonly version: string,
  ) {
    super(`${module}@${version} is served by ${baseUrl}`);
  }
}

export function isRedirectToUpstream(error: unknown): error is RedirectToUpstream {
  return error instanceof RedirectToUpstream;
}
