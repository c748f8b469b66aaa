import { createHash } from 'node:crypto';
import { errors } from '@modproxy/errors';
import { parseGoModModulePath } from '@modproxy/gomod';
import type { ModuleStorage } from '@modproxy/storage';
import type { Upstream, VersionFile } from '@modproxy/upstream';
import type { InProcessFetcherEvents } from './in-process-fetcher';
import { parseInfo, sharedWorkError } from './module-errors';
import { SingleFlight, waitFor } from './single-flight';
import type { VersionFetcher } from './version-fetcher';
import { WorkDeadline } from './work-deadline';

export interface EarlyFilesOptions {
  upstream: Upstream;
  /** Fetches the whole version behind the early answer (in process, or the queue). */
  fetcher: VersionFetcher;
  /** Read after the fetch, to compare the go.mod stored with the one served. */
  storage: ModuleStorage;
  /** Deadline of one early file's upstream call (the fetch has its own). @default 300000 */
  fetchTimeoutMs?: number;
  /** Bytes of early files held at most while their versions are fetched. @default 16 MiB */
  maxBytes?: number;
  /** `fetchFailed`: an early file upstream would not give (as the whole fetch would report it). */
  events?: Pick<InProcessFetcherEvents, 'goModMismatch' | 'fetchFailed'>;
}

/** What was served of a version before its zip was verified. */
interface EarlyVersion {
  info?: Buffer;
  mod?: Buffer;
  /** SHA-256 of the go.mod served, kept even when the bytes did not fit. */
  goModSha256?: string;
  bytes: number;
}

/**
 * `.info` and `.mod` before the zip. The go command asks for the go.mod of far more versions
 * than it downloads zips of, and waiting for the whole version (36 MiB for aws-sdk-go's go.mod)
 * to answer one is the slowest thing a cold proxy does. So a miss for a `.info` or `.mod` whose
 * upstream can give that file alone (an upstream GOPROXY: {@link Upstream.versionFile}) is
 * answered with it at once, and the version is fetched in the background through the fetcher,
 * told the go.mod served (`goModSha256`): the fetch stores nothing whose zip has another go.mod.
 *
 * Nothing is stored from an early answer: it is held here (bounded) while its version is
 * fetched, so every early answer of a version is the same bytes and upstream is asked once, then
 * dropped, and storage answers from then on. When the fetch fails, the held answers go too (the
 * next request asks upstream again). When the fetch succeeded without knowing what was served
 * (another replica's job started first), the stored go.mod is compared with the served one, and
 * a difference is reported (`goModMismatch`, found `stored`).
 */
export class EarlyFiles {
  private readonly upstream: Upstream;
  private readonly fetcher: VersionFetcher;
  private readonly storage: ModuleStorage;
  private readonly fetchTimeoutMs: number;
  private readonly maxBytes: number;
  private readonly events: Pick<InProcessFetcherEvents, 'goModMismatch' | 'fetchFailed'>;
  private readonly versions = new Map<string, EarlyVersion>();
  private readonly calls = new SingleFlight<Buffer | undefined>();
  private readonly following = new Map<string, Promise<void>>();
  private held = 0;

  constructor(options: EarlyFilesOptions) {
    this.upstream = options.upstream;
    this.fetcher = options.fetcher;
    this.storage = options.storage;
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? 300_000;
    this.maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
    this.events = options.events ?? {};
  }

  /** Versions being fetched behind an early answer, for tests and metrics. */
  get inFlight(): number {
    return this.following.size;
  }

  /** Resolves when the background fetch of module@version (if any) has ended. */
  settled(module: string, version: string): Promise<void> {
    return this.following.get(`${module}@${version}`) ?? Promise.resolve();
  }

  /**
   * The file from upstream alone, with the version's fetch started behind it; undefined when
   * upstream cannot give it alone or is busy (the caller fetches the whole version first).
   */
  async read(
    module: string,
    version: string,
    file: VersionFile,
    signal?: AbortSignal,
  ): Promise<Buffer | undefined> {
    if (!this.upstream.versionFile) return undefined;
    const key = `${module}@${version}`;
    const held = this.versions.get(key)?.[file];
    if (held) return held;
    const bytes = await waitFor(
      this.calls.run(`${file} ${key}`, () => this.fromUpstream(module, version, file)),
      signal,
      { op: `module.${file}`, module, version },
    );
    if (bytes !== undefined) this.follow(module, version);
    return bytes;
  }

  /** One upstream call per file and version for every concurrent caller, kept while the fetch runs. */
  private async fromUpstream(
    module: string,
    version: string,
    file: VersionFile,
    report = true,
  ): Promise<Buffer | undefined> {
    const op = `module.${file}`;
    const key = `${module}@${version}`;
    // Answered meanwhile by a caller that got here first.
    const held = this.versions.get(key)?.[file];
    if (held) return held;
    const deadline = new WorkDeadline(this.fetchTimeoutMs);
    let bytes: Buffer | undefined;
    try {
      bytes = await this.upstream.versionFile?.(module, version, file, { signal: deadline.signal });
      if (bytes !== undefined && file === 'info' && parseInfo(bytes, op, module).Version !== version) {
        throw errors.badGateway(op, `upstream .info does not name ${version}`, { module, version });
      }
      // Unverified, it must at least be a go.mod: a 200 page (a portal, a static server's error
      // page, one echoing the request and its credentials) is never passed to clients.
      if (bytes !== undefined && file === 'mod' && parseGoModModulePath(bytes) === undefined) {
        throw errors.badGateway(op, `upstream .mod of ${version} is not a go.mod`, { module, version });
      }
    } catch (error) {
      const failure = sharedWorkError(error, op, module, version);
      // Upstream is busy (429, or a 5xx with Retry-After): backing off is the fetcher's job (the
      // queue cools the host down and retries, and its waiters get the first attempt's answer),
      // so the whole version goes to it, which reports what happens.
      if (failure.retryAfterSeconds !== undefined) return undefined;
      // What the whole fetch would have reported, had it been asked: the status page, metrics, logs.
      if (report) this.events.fetchFailed?.(module, version, failure);
      throw failure;
    } finally {
      deadline.dispose();
    }
    if (bytes === undefined) return undefined;
    this.hold(key, file, bytes);
    return bytes;
  }

  private hold(key: string, file: VersionFile, bytes: Buffer): void {
    const entry = this.versions.get(key) ?? { bytes: 0 };
    if (file === 'mod') entry.goModSha256 = sha256(bytes);
    // Over the bound the answer is served but not held: the next request asks upstream again.
    if (this.held + bytes.length <= this.maxBytes) {
      entry[file] = bytes;
      entry.bytes += bytes.length;
      this.held += bytes.length;
    }
    this.versions.set(key, entry);
  }

  /** The version's fetch, once, behind its first early answer. */
  private follow(module: string, version: string): void {
    const key = `${module}@${version}`;
    if (this.following.has(key)) return;
    const run = this.fetchBehind(module, version, key).finally(() => {
      this.following.delete(key);
      const entry = this.versions.get(key);
      this.versions.delete(key);
      if (entry) this.held -= entry.bytes;
    });
    this.following.set(key, run);
  }

  private async fetchBehind(module: string, version: string, key: string): Promise<void> {
    try {
      // The zip must have the go.mod clients get: when only the .info was asked for, the .mod
      // is asked for now (and held, so a later .mod request is answered with these very bytes).
      // Its failure is no answer of ours: the whole fetch that follows reports its own.
      if (this.versions.get(key)?.goModSha256 === undefined) {
        await this.calls
          .run(`mod ${key}`, () => this.fromUpstream(module, version, 'mod', false))
          .catch(() => undefined);
      }
      const goModSha256 = this.versions.get(key)?.goModSha256;
      await this.fetcher.fetch(module, version, goModSha256 ? { goModSha256 } : {});
      if (goModSha256 === undefined) return;
      const stored = await this.storage.mod(module, version).catch(() => undefined);
      if (stored !== undefined && sha256(stored) !== goModSha256) {
        this.events.goModMismatch?.(module, version, 'stored');
      }
    } catch {
      // The fetch's failure is reported where it happened (the fetcher's events, the queue's
      // worker); what this process served unverified is dropped with it.
    }
  }
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
