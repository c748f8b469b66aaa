import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { errors, isModuleError, ModuleError, toModuleError } from '@modproxy/errors';
import { checkModulePath, isCanonicalVersion, isValidVersionQuery, ModuleFilter } from '@modproxy/gomod';
import { verifyGoModMatches, verifyModuleZip } from '@modproxy/modzip';
import type { CallOptions, ModuleStorage, ZipContent } from '@modproxy/storage';
import type { FetchedVersion, Upstream } from '@modproxy/upstream';
import { ExpiringMap, type LatestAnswer, type ListAnswer, type VersionsProvider } from '@modproxy/versions';
import { SingleFlight, waitFor } from './single-flight';
import { WorkDeadline } from './work-deadline';

/**
 * What a request for a version we do not hold does:
 * - `sync`: fetch it from upstream now (once, however many ask), store it, serve it;
 * - `async`: start that fetch in the background and answer not-found, so the go command
 *   falls through to its next GOPROXY entry;
 * - `none`: never fetch; serve only what storage holds (list and latest too).
 */
export type DownloadMode = 'sync' | 'async' | 'none';

export interface ModuleServiceEvents {
  /** A version was fetched from upstream and stored. */
  fetched?(module: string, version: string, durationMs: number): void;
  /** A fetch from upstream failed (the failure is not cached). */
  fetchFailed?(module: string, version: string, error: ModuleError): void;
  /** A stored version could not be announced to the list/latest provider. */
  observeFailed?(module: string, version: string, error: ModuleError): void;
  /**
   * A canonical version's .info, .mod or .zip was read: `storage` when storage held it (a
   * hit), `fetched` when it had to be fetched first (a miss). Failed reads are not told.
   */
  read?(endpoint: 'info' | 'mod' | 'zip', source: 'storage' | 'fetched'): void;
}

export interface ModuleServiceOptions {
  storage: ModuleStorage;
  upstream: Upstream;
  /** Answers `/@v/list` and `/@latest`, and hears of every version stored. */
  versions: VersionsProvider;
  /** Default `sync`. */
  downloadMode?: DownloadMode;
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

interface InfoJson {
  Version: string;
  Time?: string;
}

/**
 * The GOPROXY protocol, independent of transport: answers list, latest, info, go.mod and zip
 * requests from storage, fetching what is missing from upstream under the download mode.
 * Inputs are unescaped module paths and versions; bad ones are `invalid-argument`.
 */
export class ModuleService {
  private readonly storage: ModuleStorage;
  private readonly upstream: Upstream;
  private readonly versions: VersionsProvider;
  private readonly mode: DownloadMode;
  private readonly fetchTimeoutMs: number;
  private readonly queryCacheTtlMs: number;
  private readonly filter: ModuleFilter;
  private readonly events: ModuleServiceEvents;
  private readonly fetches = new SingleFlight<void>();
  private readonly queries = new SingleFlight<Buffer>();
  private readonly resolvedQueries = new ExpiringMap<Buffer>(QUERY_CACHE_ENTRIES);

  constructor(options: ModuleServiceOptions) {
    this.storage = options.storage;
    this.upstream = options.upstream;
    this.versions = options.versions;
    this.mode = options.downloadMode ?? 'sync';
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? 300_000;
    this.queryCacheTtlMs = options.queryCacheTtlMs ?? 10_000;
    this.filter = options.moduleFilter ?? new ModuleFilter();
    this.events = options.events ?? {};
  }

  get downloadMode(): DownloadMode {
    return this.mode;
  }

  /** Fetches under way, for metrics and readiness. */
  get fetchesInFlight(): number {
    return this.fetches.size;
  }

  /** Tagged versions, stored ones always included, pseudo-versions never. */
  async list(module: string, options: CallOptions = {}): Promise<ListAnswer> {
    this.admit('module.list', module);
    return this.versions.list(module, options);
  }

  /** The `.info` of the latest version. */
  async latest(module: string, options: CallOptions = {}): Promise<LatestAnswer> {
    this.admit('module.latest', module);
    return this.versions.latest(module, options);
  }

  /**
   * `.info` for a canonical version (served from storage, fetched on a miss) or for a query
   * such as a commit hash or branch, which upstream resolves to a canonical version.
   */
  async info(
    module: string,
    versionOrQuery: string,
    options: CallOptions = {},
  ): Promise<{ info: Buffer; immutable: boolean }> {
    this.admit('module.info', module, versionOrQuery);
    if (isCanonicalVersion(versionOrQuery)) {
      const info = await this.readStored('info', module, versionOrQuery, options, () =>
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
    if (this.mode === 'none') {
      throw errors.notFound(
        'module.info',
        `module ${module}: version query ${versionOrQuery} is not resolved in offline mode`,
        {
          module,
          version: versionOrQuery,
        },
      );
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

  async mod(module: string, version: string, options: CallOptions = {}): Promise<Buffer> {
    this.admit('module.mod', module, version);
    validateVersion(module, version, 'module.mod');
    return this.readStored('mod', module, version, options, () => this.storage.mod(module, version, options));
  }

  async zip(module: string, version: string, options: CallOptions = {}): Promise<ZipContent> {
    this.admit('module.zip', module, version);
    validateVersion(module, version, 'module.zip');
    return this.readStored('zip', module, version, options, () => this.storage.zip(module, version, options));
  }

  /** Makes sure a canonical version is stored, fetching it once for all concurrent callers. */
  async ensureStored(module: string, version: string, options: CallOptions = {}): Promise<void> {
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

  /** A version storage does not hold: fetched (or not) as the download mode says. */
  private async fetchMissing(module: string, version: string, options: CallOptions): Promise<void> {
    if (this.mode === 'none') {
      throw errors.notFound('module.fetch', `${module}@${version} is not stored`, { module, version });
    }
    const fetch = this.fetches.run(`${module}@${version}`, () => this.fetchAndStore(module, version));
    if (this.mode === 'async') {
      fetch.catch(() => undefined);
      throw errors.notFound('module.fetch', `${module}@${version} is being fetched; try again shortly`, {
        module,
        version,
      });
    }
    await waitFor(fetch, options.signal, { op: 'module.fetch', module, version });
  }

  /**
   * Reads from storage, fetching on a miss. Storage is asked first and only once on the warm
   * path, which is almost every request.
   */
  private async readStored<T>(
    endpoint: 'info' | 'mod' | 'zip',
    module: string,
    version: string,
    options: CallOptions,
    read: () => Promise<T>,
  ): Promise<T> {
    try {
      const stored = await read();
      this.events.read?.(endpoint, 'storage');
      return stored;
    } catch (error) {
      if (!isModuleError(error, 'not-found')) throw error;
    }
    // Storage just said it has no such version: straight to fetching (which checks once more,
    // inside the shared fetch, for another replica's save).
    await this.fetchMissing(module, version, options);
    const fetched = await read();
    this.events.read?.(endpoint, 'fetched');
    return fetched;
  }

  private async fetchAndStore(module: string, version: string): Promise<void> {
    const started = Date.now();
    const deadline = new WorkDeadline(this.fetchTimeoutMs);
    const { signal } = deadline;
    try {
      // Another replica may have stored it while this one was deciding to fetch.
      if (await this.storage.exists(module, version, { signal })) return;
      const fetched = await this.upstream.fetch(module, version, { signal });
      try {
        const zipSha256 = await this.verify(fetched, module, version, signal);
        await this.storage.save(
          { module, version, info: fetched.info, mod: fetched.mod, zip: fetched.openZip(), zipSha256 },
          { signal },
        );
      } finally {
        await fetched.release();
      }
      this.events.fetched?.(module, version, Date.now() - started);
      // The version is stored and will be served; a list that misses it until its next refresh
      // is the only cost of a failed observe, so it is reported, not thrown.
      await this.versions
        .observe(module, version)
        .catch((error: unknown) =>
          this.events.observeFailed?.(module, version, toModuleError(error, 'module.observe')),
        );
    } catch (error) {
      if (isModuleError(error, 'already-exists')) return;
      const failure = sharedWorkError(error, 'module.fetch', module, version);
      this.events.fetchFailed?.(module, version, failure);
      throw failure;
    } finally {
      deadline.dispose();
    }
  }

  /** Nothing is stored that breaks the module zip rules or disagrees with itself. */
  private async verify(
    fetched: FetchedVersion,
    module: string,
    version: string,
    signal: AbortSignal,
  ): Promise<string> {
    const op = 'module.verify';
    if (fetched.version !== version) {
      throw errors.badGateway(op, `upstream returned ${fetched.version} for ${version}`, { module, version });
    }
    const info = parseInfo(fetched.info, op, module);
    if (info.Version !== version) {
      throw errors.badGateway(op, `upstream .info names ${info.Version}, not ${version}`, {
        module,
        version,
      });
    }
    try {
      const zip = await verifyModuleZip(fetched.zipPath, module, version, { signal });
      verifyGoModMatches(zip.goMod, fetched.mod, module, version);
    } catch (error) {
      if (isModuleError(error, 'invalid-argument')) {
        throw errors.badGateway(op, `upstream served an invalid module: ${error.message}`, {
          module,
          version,
          cause: error,
        });
      }
      throw error;
    }
    return sha256File(fetched.zipPath, signal);
  }
}

/**
 * An error of work shared by every caller (a fetch, a query resolution): no caller can cancel
 * it, so a cancellation inside it can only be its own deadline, and is reported as `timeout`.
 */
function sharedWorkError(error: unknown, op: string, module: string, version: string): ModuleError {
  const failure = toModuleError(error, op, { module, version });
  if (failure.kind !== 'cancelled') return failure;
  return errors.timeout(failure.op, `${module}@${version}: timed out: ${failure.message}`, {
    module: failure.module ?? module,
    version: failure.version ?? version,
    detail: failure.detail,
    cause: failure,
  });
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

function parseInfo(info: Buffer, op: string, module: string): InfoJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(info.toString('utf8'));
  } catch {
    throw errors.badGateway(op, 'upstream .info is not JSON', { module });
  }
  if (!parsed || typeof parsed !== 'object' || typeof (parsed as InfoJson).Version !== 'string') {
    throw errors.badGateway(op, 'upstream .info has no Version', { module });
  }
  return parsed as InfoJson;
}

async function sha256File(path: string, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash, { signal });
  return hash.digest('hex');
}
