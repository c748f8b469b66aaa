import { errors, type ModuleError, toModuleError } from '@modproxy/errors';
import { chooseLatest, listVersions } from '@modproxy/gomod';
import type { CallOptions, ModuleStorage } from '@modproxy/storage';
import { withDeadline, type Upstream } from '@modproxy/upstream';
import type { LatestAnswer, ListAnswer, VersionsProvider } from './versions-provider';

export interface UpstreamVersionsOptions {
  storage: ModuleStorage;
  /** Absent: offline, answers come from storage only. */
  upstream?: Upstream;
  /** Deadline for each upstream call; default 30000 ms. */
  timeoutMs?: number;
  /** Told when upstream failed and stored data was served instead. */
  onFallback?(module: string, operation: 'list' | 'latest', error: ModuleError): void;
  /**
   * Whether an upstream failure is answered from storage (`stale: true`). `false` lets the
   * error through, for callers with a fallback of their own (the cached engine) or none
   * (strict network mode). Default: true.
   */
  fallbackToStorage?: boolean;
}

/**
 * list/latest without a cache: upstream is asked on every call and merged with storage, and
 * storage answers alone when upstream fails. The fallback the proxy uses when lathens is down,
 * and the building block of the cached engines.
 */
export class UpstreamVersions implements VersionsProvider {
  private readonly storage: ModuleStorage;
  private readonly upstream: Upstream | undefined;
  private readonly timeoutMs: number;
  private readonly onFallback: UpstreamVersionsOptions['onFallback'];
  private readonly fallbackToStorage: boolean;

  constructor(options: UpstreamVersionsOptions) {
    this.storage = options.storage;
    this.upstream = options.upstream;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.onFallback = options.onFallback;
    this.fallbackToStorage = options.fallbackToStorage ?? true;
  }

  async list(module: string, options: CallOptions = {}): Promise<ListAnswer> {
    const stored = await this.storage.list(module, options);
    if (!this.upstream) {
      if (stored.length === 0)
        throw errors.notFound('versions.list', `module ${module}: no stored versions`, { module });
      return { versions: listVersions(stored), source: 'storage', stale: false };
    }
    try {
      const upstream = await this.upstream.list(module, {
        signal: withDeadline(options.signal, this.timeoutMs),
      });
      return { versions: listVersions([...stored, ...upstream]), source: 'upstream', stale: false };
    } catch (error) {
      const failure = toModuleError(error, 'versions.list', { module });
      if (options.signal?.aborted || stored.length === 0 || !this.fallbackToStorage) throw failure;
      this.onFallback?.(module, 'list', failure);
      return { versions: listVersions(stored), source: 'storage', stale: true };
    }
  }

  async latest(module: string, options: CallOptions = {}): Promise<LatestAnswer> {
    if (!this.upstream) {
      const answer = await this.latestStored(module, options);
      if (!answer)
        throw errors.notFound('versions.latest', `module ${module}: no stored versions`, { module });
      return { ...answer, stale: false };
    }
    try {
      const info = await this.upstream.latest(module, {
        signal: withDeadline(options.signal, this.timeoutMs),
      });
      return { info, source: 'upstream', stale: false };
    } catch (error) {
      const failure = toModuleError(error, 'versions.latest', { module });
      if (options.signal?.aborted || !this.fallbackToStorage) throw failure;
      const answer = await this.latestStored(module, options);
      if (!answer) throw failure;
      this.onFallback?.(module, 'latest', failure);
      return { ...answer, stale: true };
    }
  }

  /** Nothing to remember: storage is read on every call. */
  async observe(): Promise<void> {}

  async close(): Promise<void> {}

  private async latestStored(
    module: string,
    options: CallOptions,
  ): Promise<{ info: Buffer; source: 'storage' } | undefined> {
    const latest = chooseLatest(await this.storage.list(module, options));
    if (!latest) return undefined;
    return { info: await this.storage.info(module, latest, options), source: 'storage' };
  }
}
