import {
  ANSWER_KINDS,
  DEFAULT_OBSERVED_TTL_MS,
  DEFAULT_RETAIN_MS,
  type AnswerKind,
  type CachedAnswer,
  type RecordedFailure,
  type RecordedNotFound,
  type StoredEntry,
  type VersionStore,
  type VersionStoreRetention,
} from './version-store';
import { ExpiringMap } from './expiring-map';

export interface MemoryVersionStoreOptions extends VersionStoreRetention {
  /** Most answers kept (each kind of each module counts once); the least used go first. Default: 100000. */
  maxEntries?: number;
  /**
   * The clock the TTLs run on (ms since the epoch); a seam for tests, which move time instead
   * of waiting for it.
   * @default Date.now
   */
  now?: () => number;
}

/**
 * The embedded store: one process's memory, for a proxy running without lathens. Same
 * semantics as the Redis store, so the same engine and conformance suite apply; replicas
 * share nothing.
 */
export class MemoryVersionStore implements VersionStore {
  private readonly now: () => number;
  private readonly retainMs: number;
  private readonly observedTtlMs: number;
  private readonly answers: ExpiringMap<CachedAnswer>;
  private readonly negatives: ExpiringMap<RecordedNotFound>;
  private readonly failures: ExpiringMap<RecordedFailure>;
  private readonly leases: ExpiringMap<string>;
  private readonly observed: ExpiringMap<Set<string>>;

  constructor(options: MemoryVersionStoreOptions = {}) {
    this.retainMs = options.retainMs ?? DEFAULT_RETAIN_MS;
    this.observedTtlMs = options.observedTtlMs ?? DEFAULT_OBSERVED_TTL_MS;
    const max = options.maxEntries ?? 100_000;
    const now = options.now ?? Date.now;
    this.now = now;
    this.answers = new ExpiringMap(max, now);
    this.negatives = new ExpiringMap(max, now);
    this.failures = new ExpiringMap(max, now);
    this.leases = new ExpiringMap(max, now);
    this.observed = new ExpiringMap(max, now);
  }

  async read(kind: AnswerKind, module: string, touchAt?: number): Promise<StoredEntry> {
    const key = keyOf(kind, module);
    const answer = this.answers.get(key);
    if (answer && touchAt !== undefined) answer.requestedAt = touchAt;
    const entry: StoredEntry = {
      observed: kind === 'list' ? [...(this.observed.get(module) ?? [])] : [],
      leased: this.leases.get(key) !== undefined,
    };
    // Copies, so that callers cannot change the store by changing what they read.
    if (answer) entry.answer = { ...answer, data: Buffer.from(answer.data) };
    const notFound = this.negatives.get(key);
    if (notFound !== undefined) entry.notFound = { ...notFound };
    const failure = this.failures.get(key);
    if (failure) entry.failure = { ...failure };
    return entry;
  }

  async saveAnswer(kind: AnswerKind, module: string, data: Buffer, fetchedAt: number): Promise<void> {
    const key = keyOf(kind, module);
    const requestedAt = this.answers.get(key)?.requestedAt ?? fetchedAt;
    this.answers.set(key, { data: Buffer.from(data), fetchedAt, requestedAt }, this.now() + this.retainMs);
    this.negatives.delete(key);
    this.failures.delete(key);
  }

  async saveNotFound(
    kind: AnswerKind,
    module: string,
    notFound: RecordedNotFound,
    ttlMs: number,
  ): Promise<void> {
    const key = keyOf(kind, module);
    this.negatives.set(key, { ...notFound }, this.now() + ttlMs);
    this.failures.delete(key);
  }

  async saveFailure(
    kind: AnswerKind,
    module: string,
    failure: RecordedFailure,
    ttlMs: number,
  ): Promise<void> {
    this.failures.set(keyOf(kind, module), { ...failure }, this.now() + ttlMs);
  }

  async expire(kind: AnswerKind, module: string): Promise<void> {
    const answer = this.answers.get(keyOf(kind, module));
    if (answer) answer.fetchedAt = 0;
  }

  async observe(module: string, version: string): Promise<void> {
    const versions = this.observed.get(module) ?? new Set<string>();
    versions.add(version);
    this.observed.set(module, versions, this.now() + this.observedTtlMs);
    for (const kind of ANSWER_KINDS) this.negatives.delete(keyOf(kind, module));
  }

  async invalidate(module: string): Promise<void> {
    for (const kind of ANSWER_KINDS) {
      const key = keyOf(kind, module);
      this.negatives.delete(key);
      this.failures.delete(key);
      await this.expire(kind, module);
    }
  }

  async acquireLease(kind: AnswerKind, module: string, token: string, ttlMs: number): Promise<boolean> {
    const key = keyOf(kind, module);
    if (this.leases.get(key) !== undefined) return false;
    this.leases.set(key, token, this.now() + ttlMs);
    return true;
  }

  async releaseLease(kind: AnswerKind, module: string, token: string): Promise<void> {
    const key = keyOf(kind, module);
    if (this.leases.get(key) === token) this.leases.delete(key);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    for (const map of [this.answers, this.negatives, this.failures, this.leases, this.observed]) map.clear();
  }
}

function keyOf(kind: AnswerKind, module: string): string {
  return `${kind} ${module}`;
}
