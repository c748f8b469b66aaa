import { isModuleError, toModuleError, type ModuleError } from '@modproxy/errors';
import type { CallOptions } from '@modproxy/storage';
import type { LatestAnswer, ListAnswer, VersionsProvider } from './versions-provider';

export interface FailoverVersionsOptions {
  /** The usual provider, e.g. `GrpcVersions` (lathens). Closed by `close()`. */
  primary: VersionsProvider;
  /** Asked when the primary cannot answer, e.g. `UpstreamVersions` (storage plus a direct upstream call). Closed by `close()`. */
  fallback: VersionsProvider;
  /** Told each time the fallback answered instead of the primary. */
  onFailover?(operation: 'list' | 'latest', error: ModuleError): void;
  /** How long after a failover `degraded` stays true. Default: 30000. */
  degradedForMs?: number;
}

/**
 * A primary provider with a fallback for when it is down: answers the primary gives
 * (including "not found") are final; a primary that fails (unreachable, timed out, broken)
 * is replaced by the fallback for that call. `degraded` tells readiness about it.
 */
export class FailoverVersions implements VersionsProvider {
  private readonly primary: VersionsProvider;
  private readonly fallback: VersionsProvider;
  private readonly onFailover: FailoverVersionsOptions['onFailover'];
  private readonly degradedForMs: number;
  private lastFailoverAt = Number.NEGATIVE_INFINITY;

  constructor(options: FailoverVersionsOptions) {
    this.primary = options.primary;
    this.fallback = options.fallback;
    this.onFailover = options.onFailover;
    this.degradedForMs = options.degradedForMs ?? 30_000;
  }

  /** Whether the fallback had to answer recently. */
  get degraded(): boolean {
    return Date.now() - this.lastFailoverAt < this.degradedForMs;
  }

  list(module: string, options: CallOptions = {}): Promise<ListAnswer> {
    return this.call('list', options, (provider) => provider.list(module, options));
  }

  latest(module: string, options: CallOptions = {}): Promise<LatestAnswer> {
    return this.call('latest', options, (provider) => provider.latest(module, options));
  }

  /** Both hear of it: the fallback may be a cache too. */
  async observe(module: string, version: string): Promise<void> {
    const results = await Promise.allSettled([
      this.primary.observe(module, version),
      this.fallback.observe(module, version),
    ]);
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.primary.close(), this.fallback.close()]);
  }

  private async call<T>(
    operation: 'list' | 'latest',
    options: CallOptions,
    run: (provider: VersionsProvider) => Promise<T>,
  ): Promise<T> {
    try {
      return await run(this.primary);
    } catch (error) {
      const failure = toModuleError(error, `versions.failover.${operation}`);
      if (options.signal?.aborted || !isPrimaryFailure(failure)) throw failure;
      this.lastFailoverAt = Date.now();
      this.onFailover?.(operation, failure);
      return run(this.fallback);
    }
  }
}

/**
 * Failures of the primary itself, as opposed to answers about the module. `bad-gateway` is an
 * answer: the primary reached upstream and upstream failed, so asking upstream again from here
 * would only repeat that call (and would mark a healthy lathens as down).
 */
function isPrimaryFailure(error: ModuleError): boolean {
  return (
    isModuleError(error, 'unavailable') ||
    isModuleError(error, 'timeout') ||
    isModuleError(error, 'internal') ||
    isModuleError(error, 'failed-precondition')
  );
}
