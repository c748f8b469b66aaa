import type { CallOptions } from '@modproxy/storage';

/** Where an answer for `/@v/list` or `/@latest` came from. */
export type AnswerSource = 'upstream' | 'cache' | 'storage';

export interface ListAnswer {
  /** Tagged versions in Go's order; stored versions always included, pseudo-versions never. */
  versions: string[];
  source: AnswerSource;
  /** True when upstream could not be asked (or failed) and an older answer is served. */
  stale: boolean;
}

export interface LatestAnswer {
  /** `.info` JSON of the latest version. */
  info: Buffer;
  source: AnswerSource;
  stale: boolean;
}

/**
 * The answers to `/@v/list` and `/@latest`. Implementations: `UpstreamVersions` (ask upstream
 * every time, merge storage, fall back to storage), the freshness-cache engine over an
 * in-memory or Redis store, and a gRPC client of the lathens service. Inputs are valid,
 * unescaped module paths. Errors are `ModuleError`s (`not-found` when nobody has the module).
 */
export interface VersionsProvider {
  list(module: string, options?: CallOptions): Promise<ListAnswer>;
  latest(module: string, options?: CallOptions): Promise<LatestAnswer>;
  /**
   * A version was stored: show it in list answers at once. Implementations that cache may
   * check with storage first and refuse (`not-found`) a version it does not hold.
   */
  observe(module: string, version: string, options?: CallOptions): Promise<void>;
  close(): Promise<void>;
}
