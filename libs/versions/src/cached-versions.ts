import { randomUUID } from 'node:crypto';
import { abortedError, errors, isModuleError, ModuleError, toModuleError } from '@modproxy/errors';
import { chooseLatest, isCanonicalVersion, isPseudoVersion, listVersions } from '@modproxy/gomod';
import type { CallOptions, ModuleStorage } from '@modproxy/storage';
import type { Upstream } from '@modproxy/upstream';
import { InProcessRevalidationQueue } from './in-process-revalidation-queue';
import type { RevalidationQueue } from './revalidation-queue';
import { UpstreamVersions } from './upstream-versions';
import {
  ANSWER_KINDS,
  type AnswerKind,
  type RecordedFailure,
  type RecordedNotFound,
  type StoredEntry,
  type VersionStore,
} from './version-store';
import type { AnswerSource, LatestAnswer, ListAnswer, VersionsProvider } from './versions-provider';

/**
 * How far list and latest may go to upstream, as Athens' `NetworkMode`:
 * - `strict`: upstream's answer merged with storage; when upstream fails (anything but "not
 *   found") and no answer younger than the hard TTL is cached, the request fails.
 * - `fallback`: the same, but an upstream failure is answered with the last cached answer
 *   however old, else with what storage holds, both marked `stale`; an error only when
 *   neither has anything.
 * - `offline`: storage only; upstream is never asked and nothing is cached (storage is the
 *   whole truth, read on each request).
 * In every mode "upstream does not have it" is not a failure: storage answers if it holds
 * versions, otherwise the module is not found (and negatively cached).
 */
export type NetworkMode = 'strict' | 'fallback' | 'offline';

/** How an answer was reached, for metrics. */
export type AnswerOutcome =
  /** Younger than the soft TTL. */
  | 'fresh'
  /** Between soft and hard TTL: served, and a revalidation queued. */
  | 'revalidating'
  /** This request's refresh asked upstream. */
  | 'refreshed'
  /** Another request's (or replica's) refresh answered. */
  | 'waited'
  /** Upstream failed: the last cached answer or storage served, marked stale. */
  | 'fallback'
  /** Offline mode, or upstream said not found and storage had it. */
  | 'storage'
  /** The store could not be reached: answered as if there were no cache. */
  | 'no-store'
  | 'not-found'
  | 'failed';

export interface CachedVersionsEvents {
  /** Every list/latest request, once, with how it was answered. */
  answered?(kind: AnswerKind, outcome: AnswerOutcome): void;
  /** Every upstream call made by this instance, and its result. */
  upstreamCalled?(
    kind: AnswerKind,
    module: string,
    result: 'ok' | 'not-found' | 'failed',
    durationMs: number,
  ): void;
  /** Upstream failed and an older answer was served instead (`stale: true`). */
  servedStale?(kind: AnswerKind, module: string, error: ModuleError): void;
  /** The store failed; the request was answered without it. */
  storeFailed?(operation: string, error: unknown): void;
  /** A background revalidation could not be queued or failed. */
  revalidationFailed?(module: string, error: unknown): void;
  /**
   * A refresh waited for one already under way instead of asking upstream itself: in this
   * process (`process`: it joined the running refresh), or on another replica (`replica`: the
   * store's lease was held, so it polled for that replica's answer).
   */
  coalesced?(kind: AnswerKind, scope: 'process' | 'replica'): void;
}

export interface CachedVersionsOptions {
  /** Where answers, leases and negative entries live; shared by replicas when it is Redis. Not closed here. */
  store: VersionStore;
  /**
   * Stored versions are merged into every fetched list, and answer when upstream cannot; only
   * versions it holds can be observed. Not closed here.
   */
  storage: ModuleStorage;
  /** Absent: offline, whatever `networkMode` says. */
  upstream?: Upstream;
  /** @default 'fallback' */
  networkMode?: NetworkMode;
  /**
   * Where stale answers wait for their revalidation (BullMQ for lathens). Not closed here.
   * @default an in-process queue running {@link CachedVersions.revalidate} 4 at a time
   */
  queue?: RevalidationQueue;
  /** An answer younger than this is served without asking upstream. @default 60000 (the proxy's list max-age) */
  softTtlMs?: number;
  /**
   * An answer older than the soft TTL but younger than this is served at once while one
   * revalidation is queued; older, the request waits for a refresh. @default 600000
   */
  hardTtlMs?: number;
  /** How long "upstream does not have this module" is believed. @default 60000 */
  negativeTtlMs?: number;
  /**
   * How long a failed refresh is believed: meanwhile requests get the fallback at once
   * instead of each waiting for a failing upstream. @default 10000
   */
  failureTtlMs?: number;
  /** Only answers requested within this window are revalidated in the background. @default 600000 */
  revalidateWindowMs?: number;
  /**
   * How long a request waits for another replica's refresh before it serves the last answer
   * (stale) or fails with `timeout`. @default 30000
   */
  waitTimeoutMs?: number;
  /** Deadline of one upstream call. @default 30000 */
  upstreamTimeoutMs?: number;
  /** Lease of one refresh: a replica that dies while holding it blocks others this long at most. @default upstreamTimeoutMs + 5000 */
  leaseTtlMs?: number;
  events?: CachedVersionsEvents;
  /**
   * The clock every age, deadline and timestamp is read from (ms since the epoch); a seam for
   * tests, which move time instead of waiting for it. Give the store the same clock.
   * @default Date.now
   */
  now?: () => number;
}

/** One request's answer before it is shaped as a ListAnswer or LatestAnswer. */
interface Resolved {
  data: Buffer;
  observed: readonly string[];
  source: AnswerSource;
  stale: boolean;
  outcome: AnswerOutcome;
}

type Resolution = Resolved | { error: ModuleError; outcome: AnswerOutcome };

const MAX_POLL_MS = 200;
/** Within this, another stale request for the module does not even ask the queue. */
const ENQUEUE_DEDUP_MS = 1_000;
const MAX_RECENT_ENQUEUES = 10_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * `/@v/list` and `/@latest` from a cache with a freshness policy, the same over an embedded
 * memory store and a Redis store shared by replicas:
 * - fresh (younger than the soft TTL): the cached answer;
 * - stale (soft to hard TTL): the cached answer at once, and one revalidation queued (the
 *   queue deduplicates by module; the revalidation only runs for modules requested within
 *   the revalidation window);
 * - expired or missing: one refresh across all replicas (a lease in the store); the others
 *   poll the store until it ends or their wait deadline passes;
 * - upstream says not found: storage answers if it has versions, otherwise a negative entry
 *   answers `not-found` for the negative TTL;
 * - upstream fails: see {@link NetworkMode}; a failure record makes everyone serve the
 *   fallback for the failure TTL instead of queueing up behind a dead upstream.
 * - the store fails: answered as {@link UpstreamVersions} would, without cache.
 * Lists merge upstream, stored (at refresh) and observed versions; pseudo-versions never
 * appear. {@link CachedVersions.observe} puts a version in the list at once.
 */
export class CachedVersions implements VersionsProvider {
  private readonly store: VersionStore;
  private readonly storage: ModuleStorage;
  private readonly networkMode: NetworkMode;
  private readonly queue: RevalidationQueue;
  private readonly ownQueue: InProcessRevalidationQueue | undefined;
  /** Upstream merged with storage; upstream failures are thrown (the fallback is ours). */
  private readonly fresh: UpstreamVersions;
  /** Storage alone. */
  private readonly stored: UpstreamVersions;
  /** Without a store: UpstreamVersions with the mode's storage fallback. */
  private readonly direct: UpstreamVersions;
  private readonly softTtlMs: number;
  private readonly hardTtlMs: number;
  private readonly negativeTtlMs: number;
  private readonly failureTtlMs: number;
  private readonly revalidateWindowMs: number;
  private readonly waitTimeoutMs: number;
  private readonly leaseTtlMs: number;
  private readonly events: CachedVersionsEvents;
  private readonly now: () => number;
  /** Refreshes in flight in this process: concurrent requests share one. */
  private readonly refreshes = new Map<string, Promise<Resolution>>();
  private readonly reads = new Map<string, Promise<StoredEntry>>();
  private readonly directCalls = new Map<string, Promise<Resolution>>();
  private readonly recentEnqueues = new Map<string, number>();

  constructor(options: CachedVersionsOptions) {
    this.store = options.store;
    this.storage = options.storage;
    this.networkMode = options.upstream ? (options.networkMode ?? 'fallback') : 'offline';
    const upstreamTimeoutMs = options.upstreamTimeoutMs ?? 30_000;
    const upstream = this.networkMode === 'offline' ? undefined : options.upstream;
    this.fresh = new UpstreamVersions({
      storage: options.storage,
      ...(upstream ? { upstream } : {}),
      timeoutMs: upstreamTimeoutMs,
      fallbackToStorage: false,
    });
    this.stored = new UpstreamVersions({ storage: options.storage });
    this.direct = new UpstreamVersions({
      storage: options.storage,
      ...(upstream ? { upstream } : {}),
      timeoutMs: upstreamTimeoutMs,
      fallbackToStorage: this.networkMode === 'fallback',
    });
    this.softTtlMs = options.softTtlMs ?? 60_000;
    this.hardTtlMs = Math.max(options.hardTtlMs ?? 600_000, this.softTtlMs);
    this.negativeTtlMs = options.negativeTtlMs ?? 60_000;
    this.failureTtlMs = options.failureTtlMs ?? 10_000;
    this.revalidateWindowMs = options.revalidateWindowMs ?? 600_000;
    this.waitTimeoutMs = options.waitTimeoutMs ?? 30_000;
    this.leaseTtlMs = options.leaseTtlMs ?? upstreamTimeoutMs + 5_000;
    this.events = options.events ?? {};
    this.now = options.now ?? Date.now;
    if (options.queue) {
      this.queue = options.queue;
    } else {
      this.ownQueue = new InProcessRevalidationQueue({
        revalidate: (module) => this.revalidate(module),
        onError: (module, error) => this.events.revalidationFailed?.(module, error),
      });
      this.queue = this.ownQueue;
    }
  }

  async list(module: string, options: CallOptions = {}): Promise<ListAnswer> {
    const answer = await this.answer('list', module, options.signal);
    return { versions: decodeList(answer.data, answer.observed), source: answer.source, stale: answer.stale };
  }

  async latest(module: string, options: CallOptions = {}): Promise<LatestAnswer> {
    const answer = await this.answer('latest', module, options.signal);
    return { info: answer.data, source: answer.source, stale: answer.stale };
  }

  /**
   * Lists the version from now on, on every replica sharing the store, and makes a cached
   * latest answer that the version would beat due for a refresh (upstream decides `@latest`,
   * e.g. it knows retractions). Pseudo-versions change nothing: they are never listed.
   * Only a version that storage holds is listed: observe is reachable by anyone who can call
   * lathens, and a version that is only claimed would otherwise appear in every replica's list
   * (`not-found` when storage does not have it).
   */
  async observe(module: string, version: string, options: CallOptions = {}): Promise<void> {
    const op = 'versions.observe';
    if (!isCanonicalVersion(version)) {
      throw errors.invalidArgument(op, `invalid version "${version}": not canonical`, {
        module,
        version,
      });
    }
    if (this.networkMode === 'offline' || isPseudoVersion(version)) return;
    if (!(await this.storage.exists(module, version, options))) {
      throw errors.notFound(op, `${module}@${version} is not stored: only stored versions are listed`, {
        module,
        version,
      });
    }
    await this.store.observe(module, version);
    const latest = (await this.store.read('latest', module)).answer;
    if (!latest || latest.fetchedAt === 0) return;
    const current = infoVersion(latest.data);
    if (current !== version && (current === undefined || chooseLatest([current, version]) === version)) {
      await this.store.expire('latest', module);
    }
  }

  /** Forgets what is cached about the module; the last answers stay only as a fallback for an outage. */
  async invalidate(module: string): Promise<void> {
    await this.store.invalidate(module);
  }

  /**
   * Asks upstream for the module's list now, whatever the cache holds (a crawl saw new tags),
   * and returns the list every replica then serves; a cached "not found" or failure record is
   * dropped first, and `@latest` is made due for a refresh too. Refreshes that overlap share
   * one upstream call: in process, and across replicas through the store's lease.
   */
  async refreshList(module: string, options: CallOptions = {}): Promise<ListAnswer> {
    if (this.networkMode === 'offline') return this.list(module, options);
    let refresh: Promise<Resolution>;
    try {
      await this.store.invalidate(module);
      refresh = this.refreshShared('list', module).catch((error: unknown) => {
        this.events.storeFailed?.('refresh', error);
        return this.shared(this.directCalls, 'list', module, () => this.withoutStore('list', module));
      });
    } catch (error) {
      this.events.storeFailed?.('invalidate', error);
      refresh = this.shared(this.directCalls, 'list', module, () => this.withoutStore('list', module));
    }
    const resolution = await this.withCallerSignal(refresh, options.signal);
    this.events.answered?.('list', resolution.outcome);
    if ('error' in resolution) throw resolution.error;
    return {
      versions: decodeList(resolution.data, resolution.observed),
      source: resolution.source,
      stale: resolution.stale,
    };
  }

  /**
   * The queue's job: refreshes the module's answers that are stale and were requested since
   * they went stale, within the revalidation window. Answers that are fresh, negative, or
   * recently failed are left alone.
   */
  async revalidate(module: string): Promise<void> {
    if (this.networkMode === 'offline') return;
    for (const kind of ANSWER_KINDS) {
      const entry = await this.store.read(kind, module);
      const answer = entry.answer;
      if (!answer || entry.notFound !== undefined || entry.failure) continue;
      const now = this.now();
      if (now - answer.fetchedAt < this.softTtlMs) continue;
      // Only answers somebody asked for since they went stale, and recently: the other kind
      // of a module, or a job that waited long in the queue, is left for its own next request.
      if (answer.requestedAt < answer.fetchedAt + this.softTtlMs) continue;
      if (now - answer.requestedAt > this.revalidateWindowMs) continue;
      await this.refreshShared(kind, module);
    }
  }

  /** Stops the in-process queue (if this instance made it) after its running revalidations. */
  async close(): Promise<void> {
    await this.ownQueue?.close();
    this.recentEnqueues.clear();
  }

  private async answer(kind: AnswerKind, module: string, signal: AbortSignal | undefined): Promise<Resolved> {
    const resolution = await this.resolve(kind, module, signal);
    this.events.answered?.(kind, resolution.outcome);
    if ('error' in resolution) throw resolution.error;
    return resolution;
  }

  private async resolve(
    kind: AnswerKind,
    module: string,
    signal: AbortSignal | undefined,
  ): Promise<Resolution> {
    if (this.networkMode === 'offline') return this.fromStorage(kind, module, signal);
    const now = this.now();
    let entry: StoredEntry;
    try {
      entry = await this.readShared(kind, module, now);
    } catch (error) {
      this.events.storeFailed?.('read', error);
      return this.withCallerSignal(
        this.shared(this.directCalls, kind, module, () => this.withoutStore(kind, module)),
        signal,
      );
    }
    const decided = this.decide(kind, module, entry, now, true);
    if (decided) return decided;
    const refresh = this.refreshShared(kind, module).catch((error: unknown) => {
      this.events.storeFailed?.('refresh', error);
      return this.shared(this.directCalls, kind, module, () => this.withoutStore(kind, module));
    });
    return this.withCallerSignal(refresh, signal);
  }

  /**
   * What the entry alone answers, or undefined when a refresh is needed. With `serveStale`
   * (a request), an answer younger than the hard TTL is served and revalidated later; without
   * (a refresh, deciding whether someone else already did the work), only a fresh one is.
   */
  private decide(
    kind: AnswerKind,
    module: string,
    entry: StoredEntry,
    now: number,
    serveStale: boolean,
  ): Resolution | Promise<Resolution> | undefined {
    if (entry.notFound !== undefined) {
      // As upstream said it: a 410 stays a 410.
      const { kind: notFoundKind, message, detail } = entry.notFound;
      return {
        error: new ModuleError(notFoundKind, `versions.${kind}`, message, {
          module,
          ...(detail !== undefined ? { detail } : {}),
        }),
        outcome: 'not-found',
      };
    }
    const answer = entry.answer;
    if (answer) {
      const age = now - answer.fetchedAt;
      const served = {
        data: answer.data,
        observed: entry.observed,
        source: 'cache' as const,
        stale: entry.failure !== undefined,
      };
      if (age < this.softTtlMs) return { ...served, outcome: serveStale ? 'fresh' : 'waited' };
      if (serveStale && age < this.hardTtlMs) {
        this.scheduleRevalidation(module);
        return { ...served, outcome: 'revalidating' };
      }
    }
    if (entry.failure)
      return this.fallback(kind, module, entry, this.remembered(kind, module, entry.failure, now));
    return undefined;
  }

  /**
   * Concurrent requests for one answer share one store read: under load most requests are
   * for a few hot modules, and each read is a round trip to Redis.
   */
  private readShared(kind: AnswerKind, module: string, now: number): Promise<StoredEntry> {
    const key = `${kind} ${module}`;
    let read = this.reads.get(key);
    if (!read) {
      read = this.store.read(kind, module, now).finally(() => this.reads.delete(key));
      this.reads.set(key, read);
    }
    return read;
  }

  /** One refresh per answer per process at a time; across processes, the store's lease. */
  private refreshShared(kind: AnswerKind, module: string): Promise<Resolution> {
    if (this.refreshes.has(`${kind} ${module}`)) this.events.coalesced?.(kind, 'process');
    return this.shared(this.refreshes, kind, module, () => this.refresh(kind, module));
  }

  private async refresh(kind: AnswerKind, module: string): Promise<Resolution> {
    const deadline = this.now() + this.waitTimeoutMs;
    const token = randomUUID();
    let pause = 5;
    let waited = false;
    for (;;) {
      const entry = await this.store.read(kind, module);
      const decided = this.decide(kind, module, entry, this.now(), false);
      if (decided) return decided;
      if (!entry.leased && (await this.store.acquireLease(kind, module, token, this.leaseTtlMs))) {
        try {
          // Someone may have finished a refresh between our read and our lease.
          const current = await this.store.read(kind, module);
          return (
            (await this.decide(kind, module, current, this.now(), false)) ??
            (await this.fetch(kind, module, current))
          );
        } finally {
          await this.store
            .releaseLease(kind, module, token)
            .catch((error: unknown) => this.events.storeFailed?.('release', error));
        }
      }
      if (!waited) {
        waited = true;
        this.events.coalesced?.(kind, 'replica');
      }
      const left = deadline - this.now();
      if (left <= 0) {
        const timeout = errors.timeout(
          `versions.${kind}`,
          `no refresh of ${module} finished within ${this.waitTimeoutMs} ms`,
          { module },
        );
        return this.fallback(kind, module, entry, timeout);
      }
      await sleep(Math.min(pause, left));
      pause = Math.min(pause * 2, MAX_POLL_MS);
    }
  }

  /** Asks upstream (holding the lease) and records what it said. */
  private async fetch(kind: AnswerKind, module: string, entry: StoredEntry): Promise<Resolution> {
    const started = this.now();
    let data: Buffer;
    try {
      data =
        kind === 'list'
          ? encodeList((await this.fresh.list(module)).versions)
          : (await this.fresh.latest(module)).info;
    } catch (error) {
      const failure = toModuleError(error, `versions.${kind}`, { module });
      const notFound = isModuleError(failure, 'not-found') || isModuleError(failure, 'gone');
      this.events.upstreamCalled?.(kind, module, notFound ? 'not-found' : 'failed', this.now() - started);
      return notFound
        ? this.notFound(kind, module, entry, failure)
        : this.failed(kind, module, entry, failure);
    }
    this.events.upstreamCalled?.(kind, module, 'ok', this.now() - started);
    await this.save('save', () => this.store.saveAnswer(kind, module, data, this.now()));
    return { data, observed: entry.observed, source: 'upstream', stale: false, outcome: 'refreshed' };
  }

  /** Upstream does not have the module: storage may; otherwise remember that nobody does. */
  private async notFound(
    kind: AnswerKind,
    module: string,
    entry: StoredEntry,
    failure: ModuleError,
  ): Promise<Resolution> {
    const stored = await this.storedData(kind, module);
    if (stored) {
      await this.save('save', () => this.store.saveAnswer(kind, module, stored, this.now()));
      return { data: stored, observed: entry.observed, source: 'storage', stale: false, outcome: 'storage' };
    }
    if (kind === 'list' && entry.observed.length > 0) {
      return {
        data: Buffer.alloc(0),
        observed: entry.observed,
        source: 'cache',
        stale: false,
        outcome: 'storage',
      };
    }
    const notFound: RecordedNotFound = {
      kind: failure.kind === 'gone' ? 'gone' : 'not-found',
      message: failure.message,
      ...(failure.detail !== undefined ? { detail: failure.detail } : {}),
    };
    await this.save('save', () => this.store.saveNotFound(kind, module, notFound, this.negativeTtlMs));
    return { error: failure, outcome: 'not-found' };
  }

  private async failed(
    kind: AnswerKind,
    module: string,
    entry: StoredEntry,
    failure: ModuleError,
  ): Promise<Resolution> {
    const record: RecordedFailure = {
      at: this.now(),
      kind: failure.kind,
      message: failure.message,
      ...(failure.retryAfterSeconds !== undefined ? { retryAfterSeconds: failure.retryAfterSeconds } : {}),
      ...(failure.detail !== undefined ? { detail: failure.detail } : {}),
    };
    await this.save('save', () => this.store.saveFailure(kind, module, record, this.failureTtlMs));
    return this.fallback(kind, module, entry, failure);
  }

  /**
   * A failure record as the error it was: its kind, message and detail, and its Retry-After
   * counted from when it failed (at least a second while it is remembered).
   */
  private remembered(kind: AnswerKind, module: string, failure: RecordedFailure, now: number): ModuleError {
    const retryAfterSeconds =
      failure.retryAfterSeconds === undefined
        ? undefined
        : Math.max(1, Math.ceil(failure.retryAfterSeconds - (now - failure.at) / 1_000));
    return new ModuleError(failure.kind, `versions.${kind}`, failure.message, {
      module,
      ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
      ...(failure.detail !== undefined ? { detail: failure.detail } : {}),
    });
  }

  /** Upstream could not answer: the mode decides between the last answer, storage, and the error. */
  private async fallback(
    kind: AnswerKind,
    module: string,
    entry: StoredEntry,
    failure: ModuleError,
  ): Promise<Resolution> {
    if (this.networkMode === 'strict') return { error: failure, outcome: 'failed' };
    if (entry.answer) {
      this.events.servedStale?.(kind, module, failure);
      return {
        data: entry.answer.data,
        observed: entry.observed,
        source: 'cache',
        stale: true,
        outcome: 'fallback',
      };
    }
    const stored = await this.storedData(kind, module);
    if (stored || (kind === 'list' && entry.observed.length > 0)) {
      this.events.servedStale?.(kind, module, failure);
      return {
        data: stored ?? Buffer.alloc(0),
        observed: entry.observed,
        source: 'storage',
        stale: true,
        outcome: 'fallback',
      };
    }
    return { error: failure, outcome: 'failed' };
  }

  /** Offline mode: storage is the answer. */
  private async fromStorage(
    kind: AnswerKind,
    module: string,
    signal: AbortSignal | undefined,
  ): Promise<Resolution> {
    try {
      const options = signal ? { signal } : {};
      const data =
        kind === 'list'
          ? encodeList((await this.stored.list(module, options)).versions)
          : (await this.stored.latest(module, options)).info;
      return { data, observed: [], source: 'storage', stale: false, outcome: 'storage' };
    } catch (error) {
      const failure = toModuleError(error, `versions.${kind}`, { module });
      return { error: failure, outcome: isModuleError(failure, 'not-found') ? 'not-found' : 'failed' };
    }
  }

  /** The store is down: answer as the uncached provider would. */
  private async withoutStore(kind: AnswerKind, module: string): Promise<Resolution> {
    try {
      const answer = kind === 'list' ? await this.direct.list(module) : await this.direct.latest(module);
      const data = 'versions' in answer ? encodeList(answer.versions) : answer.info;
      return { data, observed: [], source: answer.source, stale: answer.stale, outcome: 'no-store' };
    } catch (error) {
      const failure = toModuleError(error, `versions.${kind}`, { module });
      return { error: failure, outcome: isModuleError(failure, 'not-found') ? 'not-found' : 'failed' };
    }
  }

  /** What storage alone answers, or undefined when it has nothing. */
  private async storedData(kind: AnswerKind, module: string): Promise<Buffer | undefined> {
    try {
      return kind === 'list'
        ? encodeList((await this.stored.list(module)).versions)
        : (await this.stored.latest(module)).info;
    } catch {
      return undefined;
    }
  }

  private scheduleRevalidation(module: string): void {
    const now = this.now();
    const last = this.recentEnqueues.get(module);
    if (last !== undefined && now - last < ENQUEUE_DEDUP_MS) return;
    if (this.recentEnqueues.size >= MAX_RECENT_ENQUEUES) {
      for (const [key, at] of this.recentEnqueues)
        if (now - at >= ENQUEUE_DEDUP_MS) this.recentEnqueues.delete(key);
      if (this.recentEnqueues.size >= MAX_RECENT_ENQUEUES) this.recentEnqueues.clear();
    }
    this.recentEnqueues.set(module, now);
    // Never awaited: a slow or unreachable queue must not hold up the answer.
    this.queue.enqueue(module).catch((error: unknown) => {
      this.recentEnqueues.delete(module);
      this.events.revalidationFailed?.(module, error);
    });
  }

  /** A write after the answer is known: its failure costs the cache, never the answer. */
  private async save(operation: string, write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.events.storeFailed?.(operation, error);
    }
  }

  private shared(
    flights: Map<string, Promise<Resolution>>,
    kind: AnswerKind,
    module: string,
    run: () => Promise<Resolution>,
  ): Promise<Resolution> {
    const key = `${kind} ${module}`;
    let flight = flights.get(key);
    if (!flight) {
      flight = run().finally(() => flights.delete(key));
      flights.set(key, flight);
    }
    return flight;
  }

  /** The shared work goes on for the others; this caller stops waiting when its signal fires. */
  private withCallerSignal(work: Promise<Resolution>, signal: AbortSignal | undefined): Promise<Resolution> {
    if (!signal) return work;
    if (signal.aborted) return Promise.resolve(abortedResolution(signal));
    return new Promise<Resolution>((resolve, reject) => {
      const onAbort = () => resolve(abortedResolution(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }
}

function abortedResolution(signal: AbortSignal): Resolution {
  return { error: abortedError('versions', signal), outcome: 'failed' };
}

function encodeList(versions: readonly string[]): Buffer {
  return Buffer.from(versions.join('\n'), 'utf8');
}

/** The cached list (already in order) with the observed versions it lacks merged in. */
function decodeList(data: Buffer, observed: readonly string[]): string[] {
  const text = data.toString('utf8');
  const cached = text === '' ? [] : text.split('\n');
  if (observed.length === 0) return cached;
  const known = new Set(cached);
  const extra = observed.filter((version) => !known.has(version));
  return extra.length === 0 ? cached : listVersions([...cached, ...extra]);
}

/** The Version field of a `.info` JSON, if it has a readable one. */
function infoVersion(info: Buffer): string | undefined {
  try {
    const value: unknown = JSON.parse(info.toString('utf8'));
    const version =
      typeof value === 'object' && value !== null ? (value as Record<string, unknown>)['Version'] : undefined;
    return typeof version === 'string' ? version : undefined;
  } catch {
    return undefined;
  }
}
