import type { CallOptions } from '@modproxy/storage';

/** What a fetch may be told of the version it fetches. */
export interface FetchExpectations {
  /**
   * Hex SHA-256 of the go.mod already served for this version before its zip was verified (the
   * `.mod` answered alone): the zip's go.mod must be exactly that, or nothing is stored.
   */
  goModSha256?: string;
}

export interface FetchOptions extends CallOptions, FetchExpectations {}

/**
 * How a version storage does not hold gets there: the miss path of {@link ModuleService},
 * as a port. The embedded default fetches in process ({@link InProcessFetcher}: one fetch per
 * version in this process); the production shape hands the fetch to crathens through the
 * queue (libs/queue `FetchQueue` has this shape: one job per version across every replica).
 */
export interface VersionFetcher {
  /**
   * Resolves once module@version is stored (by this call or by anyone else's), rejects with
   * the fetch's ModuleError (not-found stays not-found). The caller's signal ends only its own
   * wait, with `cancelled` (or `timeout` for a deadline); the fetch goes on for everyone else.
   */
  fetch(module: string, version: string, options?: FetchOptions): Promise<void>;
  /**
   * Starts the fetch without waiting for it (the async download modes): resolves once it is
   * under way or queued; the fetch's own outcome is not reported here.
   */
  enqueue(module: string, version: string, expectations?: FetchExpectations): Promise<void>;
}
