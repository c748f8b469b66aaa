import { errors, isModuleError, toModuleError } from '@modproxy/errors';
import { checkModulePath, isCanonicalVersion, isValidVersionQuery, ModuleFilter } from '@modproxy/gomod';
import type { CallOptions, ModuleStorage, ZipContent } from '@modproxy/storage';
import type { Upstream } from '@modproxy/upstream';
import {
  ExpiringMap,
  UpstreamVersions,
  type LatestAnswer,
  type ListAnswer,
  type VersionsProvider,
} from '@modproxy/versions';
import { DownloadPolicy, redirects, type DownloadMode } from './download-policy';
import { InProcessFetcher, type InProcessFetcherEvents } from './in-process-fetcher';
import { parseInfo, sharedWorkError } from './module-errors';
import { RedirectToUpstream } from './redirect-to-upstream';
import { SingleFlight, waitFor } from './single-flight';
import { EarlyFiles } from './early-files';
import type { FetchOptions, VersionFetcher } from './version-fetcher';
import { WorkDeadline } from './work-deadline';

export type { DownloadMode } from './download-policy';

export interface ModuleServiceEvents extends InProcessFetcherEvents {
  /**
   * A client asked about `module` in a way that says it is in use: list, latest, or a version
   * that is not stored (for crawling recently requested modules more often).
   */
  requested?(module: string): void;
}

/** Per-call options of the info, go.mod and zip reads. */
export interface ReadOptions extends CallOptions {
  /** Told when the version was not stored and this call had it fetched (or waited for its fetch). */
  onFetched?(): void;
  /**
   * Told when the answer is an `.info` or `.mod` from upstream alone, served before the
   * version's zip was verified (see {@link EarlyFiles}): no cache should keep it for good.
   */
  onUnverified?(): void;
}

export interface ModuleServiceOptions {
  storage: ModuleStorage;
  /** Resolves version queries (`.info` for a branch or commit), and fetches in process. */
  upstream: Upstream;
  /** Answers `/@v/list` and `/@latest`, and hears of every version stored. */
  versions: VersionsProvider;
  /** One download mode for every module. Default `sync`; {@link downloadPolicy} wins. */
  downloadMode?: DownloadMode;
  /** The download mode (and redirect target) per module pattern. Default: {@link downloadMode} for all. */
  downloadPolicy?: DownloadPolicy;
  /**
   * How a missing version is fetched. Default: an {@link InProcessFetcher} over `storage`,
   * `upstream` and `versions`, with `fetchTimeoutMs` and the fetch events.
   */
  fetcher?: VersionFetcher;
  /**
   * Deadline for one whole fetch (info, go.mod, zip, verification, save), and for resolving a
   * version query (a branch or commit may need a clone). @default 300000
   */
  fetchTimeoutMs?: number;
  /**
   * How long a resolved version query (`.info` for a branch or commit) is answered from memory,
   * so that a burst of clients asking for `@main` costs one go command. 0: never. @default 10000
   */
  queryCacheTtlMs?: number;
  /** Modules refused (403) before storage or upstream is asked. @default none refused */
  moduleFilter?: ModuleFilter;
  events?: ModuleServiceEvents;
}

/** Resolved version queries remembered at most, the least recently used going first. */
const QUERY_CACHE_ENTRIES = 1_000;

/**
 * The GOPROXY protocol, independent of transport: answers list, latest, info, go.mod and zip
 * requests from storage, fetching what is missing from upstream under the download mode.
 * Inputs are unescaped module paths and versions; bad ones are `invalid-argument`.
 */
export class ModuleService {
  private readonly storage: ModuleStorage;
  private readonly upstream: Upstream;
  private readonly versions: VersionsProvider;
  /** list/latest of modules whose mode is `none`: what storage holds, nothing else. */
  private readonly storedVersions: VersionsProvider;
  private readonly policy: DownloadPolicy;
  private readonly fetcher: VersionFetcher;
  private readonly fetchTimeoutMs: number;
  private readonly queryCacheTtlMs: number;
  private readonly filter: ModuleFilter;
  private readonly events: ModuleServiceEvents;
  private readonly queries = new SingleFlight<Buffer>();
  private readonly resolvedQueries = new ExpiringMap<Buffer>(QUERY_CACHE_ENTRIES);
  private readonly early: EarlyFiles;

  constructor(options: ModuleServiceOptions) {
    this.storage = options.storage;
    this.upstream = options.upstream;
    this.versions = options.versions;
    this.storedVersions = new UpstreamVersions({ storage: options.storage });
    this.policy = options.downloadPolicy ?? DownloadPolicy.uniform(options.downloadMode ?? 'sync');
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? 300_000;
    this.queryCacheTtlMs = options.queryCacheTtlMs ?? 10_000;
    this.filter = options.moduleFilter ?? new ModuleFilter();
    this.events = options.events ?? {};
    this.fetcher =
      options.fetcher ??
      new InProcessFetcher({
        storage: options.storage,
        upstream: options.upstream,
        versions: options.versions,
        fetchTimeoutMs: this.fetchTimeoutMs,
        events: this.events,
      });
    this.early = new EarlyFiles({
      upstream: this.upstream,
      fetcher: this.fetcher,
      storage: this.storage,
      fetchTimeoutMs: this.fetchTimeoutMs,
      events: this.events,
    });
  }

  /** Resolves once the background fetch behind an early `.info` or `.mod` answer (if any) has ended. */
  fetchBehindEarlyAnswer(module: string, version: string): Promise<void> {
    return this.early.settled(module, version);
  }

  /** The mode of modules no download rule names. */
  get downloadMode(): DownloadMode {
    return this.policy.defaultMode;
  }

  /** The mode (and redirect target) that applies to `module`. */
  downloadModeOf(module: string) {
    return this.policy.decide(module);
  }

  /** Fetches under way in this process, for metrics and readiness (0 when crathens fetches). */
  get fetchesInFlight(): number {
    return this.fetcher instanceof InProcessFetcher ? this.fetcher.inFlight : 0;
  }

  /** Tagged versions, stored ones always included, pseudo-versions never. */
  async list(module: string, options: CallOptions = {}): Promise<ListAnswer> {
    this.admit('module.list', module);
    this.events.requested?.(module);
    return this.versionsOf(module).list(module, options);
  }

  /** The `.info` of the latest version. */
  async latest(module: string, options: CallOptions = {}): Promise<LatestAnswer> {
    this.admit('module.latest', module);
    this.events.requested?.(module);
    return this.versionsOf(module).latest(module, options);
  }

  /**
   * `.info` for a canonical version (served from storage, fetched on a miss) or for a query
   * such as a commit hash or branch, which upstream resolves to a canonical version.
   */
  async info(
    module: string,
    versionOrQuery: string,
    options: ReadOptions = {},
  ): Promise<{ info: Buffer; immutable: boolean }> {
    this.admit('module.info', module, versionOrQuery);
    if (isCanonicalVersion(versionOrQuery)) {
      const info = await this.readFile('info', module, versionOrQuery, options, () =>
        this.storage.info(module, versionOrQuery, options),
      );
      return { info, immutable: true };
    }
    if (!isValidVersionQuery(versionOrQuery)) {
      throw errors.invalidArgument('module.info', `invalid version ${JSON.stringify(versionOrQuery)}`, {
        module,
        version: versionOrQuery,
      });
    }
    const decision = this.policy.decide(module);
    if (decision.mode === 'none') {
      throw errors.notFound(
        'module.info',
        `module ${module}: version query ${versionOrQuery} is not resolved in offline mode`,
        {
          module,
          version: versionOrQuery,
        },
      );
    }
    if (decision.redirectUrl !== undefined) {
      throw new RedirectToUpstream(decision.redirectUrl, module, versionOrQuery);
    }
    const key = `${module}@${versionOrQuery}`;
    const remembered = this.resolvedQueries.get(key);
    if (remembered) return { info: remembered, immutable: false };
    const info = await waitFor(
      this.queries.run(key, () => this.resolveQuery(module, versionOrQuery)),
      options.signal,
      { op: 'module.info', module, version: versionOrQuery },
    );
    return { info, immutable: false };
  }

  async mod(module: string, version: string, options: ReadOptions = {}): Promise<Buffer> {
    this.admit('module.mod', module, version);
    validateVersion(module, version, 'module.mod');
    return this.readFile('mod', module, version, options, () => this.storage.mod(module, version, options));
  }

  async zip(module: string, version: string, options: ReadOptions = {}): Promise<ZipContent> {
    this.admit('module.zip', module, version);
    validateVersion(module, version, 'module.zip');
    return this.readStored(module, version, options, () => this.storage.zip(module, version, options));
  }

  /**
   * Makes sure a canonical version is stored, fetching it as the download mode says (once for
   * all concurrent callers).
   */
  async ensureStored(module: string, version: string, options: FetchOptions = {}): Promise<void> {
    this.admit('module.fetch', module, version);
    validateVersion(module, version, 'module.fetch');
    if (await this.storage.exists(module, version, options)) return;
    await this.fetchMissing(module, version, options);
  }

  /** A valid module path the filter lets through, or `invalid-argument` / `forbidden`. */
  private admit(op: string, module: string, version?: string): void {
    validateModule(module);
    this.filter.check(op, module, version);
  }

  /** `none` serves only what is stored, list and latest included. */
  private versionsOf(module: string): VersionsProvider {
    return this.policy.decide(module).mode === 'none' ? this.storedVersions : this.versions;
  }

  /**
   * Resolves a version query once for every concurrent caller, under the fetch deadline: a
   * branch or a commit may mean cloning the repository, and the resolved version is fetched
   * next, since the go command asks for its .mod and .zip right after.
   */
  private async resolveQuery(module: string, query: string): Promise<Buffer> {
    const op = 'module.info';
    const deadline = new WorkDeadline(this.fetchTimeoutMs);
    const { signal } = deadline;
    try {
      const info = await this.upstream.info(module, query, { signal });
      const { Version } = parseInfo(info, op, module);
      if (!isCanonicalVersion(Version)) {
        throw errors.badGateway(op, `upstream resolved ${query} to non-canonical ${Version}`, { module });
      }
      await this.ensureStored(module, Version, { signal });
      if (this.queryCacheTtlMs > 0)
        this.resolvedQueries.set(`${module}@${query}`, info, Date.now() + this.queryCacheTtlMs);
      return info;
    } catch (error) {
      throw sharedWorkError(error, op, module, query);
    } finally {
      deadline.dispose();
    }
  }

  /** A version storage does not hold: fetched (or not, or redirected) as the download mode says. */
  private async fetchMissing(module: string, version: string, options: FetchOptions): Promise<void> {
    const { mode, redirectUrl } = this.policy.decide(module);
    if (mode === 'none') {
      throw errors.notFound('module.fetch', `${module}@${version} is not stored`, { module, version });
    }
    this.events.requested?.(module);
    if (mode === 'async' || mode === 'async_redirect') {
      const expectations = options.goModSha256 ? { goModSha256: options.goModSha256 } : {};
      this.fetcher.enqueue(module, version, expectations).catch((error: unknown) => {
        this.events.fetchFailed?.(module, version, sharedWorkError(error, 'module.fetch', module, version));
      });
    }
    if (redirects(mode)) throw new RedirectToUpstream(redirectUrl ?? '', module, version);
    if (mode === 'async') {
      throw errors.notFound('module.fetch', `${module}@${version} is being fetched; try again shortly`, {
        module,
        version,
      });
    }
    await this.fetcher.fetch(module, version, options);
  }

  /**
   * An `.info` or `.mod` from storage; on a miss in the `sync` download mode, from upstream
   * alone when it can give it (the zip follows in the background, see
   * {@link EarlyFiles}), otherwise after fetching the whole version.
   */
  private async readFile(
    file: 'info' | 'mod',
    module: string,
    version: string,
    options: ReadOptions,
    read: () => Promise<Buffer>,
  ): Promise<Buffer> {
    try {
      return await read();
    } catch (error) {
      if (!isModuleError(error, 'not-found')) throw error;
    }
    // `async` answers a miss with 404 at once (the client falls through): an early answer would
    // make it wait for upstream after all. The other modes fetch nothing here.
    if (this.policy.decide(module).mode === 'sync') {
      const early = await this.early.read(module, version, file, options.signal);
      if (early !== undefined) {
        this.events.requested?.(module);
        options.onFetched?.();
        options.onUnverified?.();
        return early;
      }
    }
    await this.fetchMissing(module, version, options);
    options.onFetched?.();
    return read();
  }

  /**
   * Reads from storage, fetching on a miss. Storage is asked first and only once on the warm
   * path, which is almost every request.
   */
  private async readStored<T>(
    module: string,
    version: string,
    options: ReadOptions,
    read: () => Promise<T>,
  ): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (!isModuleError(error, 'not-found')) throw error;
    }
    // Storage just said it has no such version: straight to fetching (which checks once more,
    // inside the shared fetch, for another replica's save).
    await this.fetchMissing(module, version, options);
    options.onFetched?.();
    return read();
  }
}

function validateModule(module: string): void {
  try {
    checkModulePath(module);
  } catch (error) {
    throw toModuleError(error, 'module.validate', { module });
  }
}

function validateVersion(module: string, version: string, op: string): void {
  validateModule(module);
  if (!isCanonicalVersion(version)) {
    throw errors.invalidArgument(
      op,
      `invalid version ${JSON.stringify(version)}: not a canonical semantic version`,
      {
        module,
        version,
      },
    );
  }
}
