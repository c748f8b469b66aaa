import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { errors, isModuleError, ModuleError, toModuleError } from '@modproxy/errors';
import { synthesizedGoMod, verifyGoModMatches, verifyModuleZip } from '@modproxy/modzip';
import type { ModuleStorage } from '@modproxy/storage';
import type { FetchedVersion, Upstream } from '@modproxy/upstream';
import type { VersionsProvider } from '@modproxy/versions';
import { parseInfo, sharedWorkError } from './module-errors';
import { SingleFlight, waitFor } from './single-flight';
import type { FetchExpectations, FetchOptions, VersionFetcher } from './version-fetcher';
import { WorkDeadline } from './work-deadline';

export interface InProcessFetcherEvents {
  /** A version was fetched from upstream and stored. */
  fetched?(module: string, version: string, durationMs: number): void;
  /** A fetch from upstream failed (the failure is not cached). */
  fetchFailed?(module: string, version: string, error: ModuleError): void;
  /** A stored version could not be announced to the list/latest provider. */
  observeFailed?(module: string, version: string, error: ModuleError): void;
  /**
   * The go.mod of a version's zip is not the go.mod already served for it (the `.mod` answered
   * before the zip was verified): `zip`, the fetch refused it and stored nothing; `stored`, the
   * version was stored by a fetch that did not know what this process served.
   */
  goModMismatch?(module: string, version: string, found: 'zip' | 'stored'): void;
}

export interface InProcessFetcherOptions {
  storage: ModuleStorage;
  upstream: Upstream;
  /** Told of every version stored (`observe`), so list answers show it at once. */
  versions: VersionsProvider;
  /** Deadline for one whole fetch (info, go.mod, zip, verification, save). @default 300000 */
  fetchTimeoutMs?: number;
  events?: InProcessFetcherEvents;
}

/**
 * The fetcher of the embedded default (and of crathens' workers): fetches a version from
 * upstream in this process, once for all concurrent callers (`SingleFlight`), verifies it
 * against the module zip rules and its own .info and go.mod, saves it, and tells the versions
 * provider. Failures are never remembered.
 */
export class InProcessFetcher implements VersionFetcher {
  private readonly storage: ModuleStorage;
  private readonly upstream: Upstream;
  private readonly versions: VersionsProvider;
  private readonly fetchTimeoutMs: number;
  private readonly events: InProcessFetcherEvents;
  private readonly fetches = new SingleFlight<void>();
  /** The go.mod digest each fetch under way must find in its zip, when one was served already. */
  private readonly expectedGoMods = new Map<string, string>();

  constructor(options: InProcessFetcherOptions) {
    this.storage = options.storage;
    this.upstream = options.upstream;
    this.versions = options.versions;
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? 300_000;
    this.events = options.events ?? {};
  }

  /** Fetches under way, for metrics and readiness. */
  get inFlight(): number {
    return this.fetches.size;
  }

  fetch(module: string, version: string, options: FetchOptions = {}): Promise<void> {
    return waitFor(this.start(module, version, options), options.signal, {
      op: 'module.fetch',
      module,
      version,
    });
  }

  async enqueue(module: string, version: string, expectations: FetchExpectations = {}): Promise<void> {
    // Reported through the events; nobody waits for it.
    this.start(module, version, expectations).catch(() => undefined);
  }

  private start(module: string, version: string, expectations: FetchExpectations): Promise<void> {
    const key = `${module}@${version}`;
    // The first go.mod served is the one every later answer gave (they come from it); a fetch
    // already under way reads it when it verifies, so joining it late still counts.
    if (expectations.goModSha256 && !this.expectedGoMods.has(key)) {
      this.expectedGoMods.set(key, expectations.goModSha256.toLowerCase());
    }
    return this.fetches.run(key, async () => {
      try {
        await this.fetchAndStore(module, version);
      } finally {
        this.expectedGoMods.delete(key);
      }
    });
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

  /**
   * A zip whose go.mod (or the one a go.mod-less zip stands for) is not the go.mod already served
   * for the version is refused: clients have that one in their go.sum and module caches.
   */
  private checkServedGoMod(goMod: Buffer, module: string, version: string): void {
    const served = this.expectedGoMods.get(`${module}@${version}`);
    if (served === undefined) return;
    const actual = createHash('sha256').update(goMod).digest('hex');
    if (actual === served) return;
    this.events.goModMismatch?.(module, version, 'zip');
    throw errors.badGateway(
      'module.verify',
      `upstream's zip of ${module}@${version} has a go.mod other than the one already served for it; nothing was stored`,
      { module, version, detail: `served go.mod SHA-256 ${served}, the zip's ${actual}` },
    );
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
      this.checkServedGoMod(zip.goMod ?? synthesizedGoMod(module), module, version);
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

async function sha256File(path: string, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash, { signal });
  return hash.digest('hex');
}
