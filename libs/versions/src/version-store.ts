import type { ErrorKind } from '@modproxy/errors';

/** The two answers cached per module: `/@v/list` and `/@latest`. */
export type AnswerKind = 'list' | 'latest';

export const ANSWER_KINDS: readonly AnswerKind[] = ['list', 'latest'];

/** The last good answer for one kind of one module, however old. */
export interface CachedAnswer {
  /** The answer itself: for `list` the versions one per line, for `latest` the `.info` JSON. */
  data: Buffer;
  /** When upstream gave this answer (ms since the epoch); 0 once expired on purpose. */
  fetchedAt: number;
  /** When a request last asked for it (ms since the epoch). */
  requestedAt: number;
}

/** A refresh that failed recently: replicas serve their fallback instead of retrying at once. */
export interface RecordedFailure {
  /** When it failed (ms since the epoch). */
  at: number;
  kind: ErrorKind;
  message: string;
  /** The failure's Retry-After (seconds from `at`), so later answers still say when to retry. */
  retryAfterSeconds?: number;
  /** The failure's operator-only detail (already redacted), for the logs of later answers. */
  detail?: string;
}

/** "Upstream does not have it", as upstream said it: 404 (`not-found`) or 410 (`gone`). */
export interface RecordedNotFound {
  kind: 'not-found' | 'gone';
  message: string;
  /** Operator-only detail (already redacted). */
  detail?: string;
}

/** Everything a replica needs to decide how to answer, read in one round trip. */
export interface StoredEntry {
  answer?: CachedAnswer;
  /** A live negative entry: upstream said the module does not exist (404) or is gone (410). */
  notFound?: RecordedNotFound;
  /** A live failure record (see {@link VersionStore.saveFailure}). */
  failure?: RecordedFailure;
  /** Versions observed for the module and still remembered (read with `list`, empty for `latest`). */
  observed: string[];
  /** Whether a replica holds the refresh lease right now. */
  leased: boolean;
}

/**
 * Where the freshness engine keeps its state, shared by every replica using the same store.
 * Timestamps come from the callers' clocks (replicas are assumed to agree within a fraction
 * of the TTLs). Every write is atomic for the entry it touches, and every piece of state ends
 * by itself (answers after the store's retention, negative entries, failures and leases after
 * the TTL they were written with), so the store never grows without bound.
 *
 * Errors: any failure to reach the store is thrown as is; callers treat the store as optional
 * and answer without it.
 */
export interface VersionStore {
  /**
   * Reads the state of one answer. `touchAt` records a request at that time
   * (`requestedAt`) when an answer exists; absent, the read changes nothing.
   */
  read(kind: AnswerKind, module: string, touchAt?: number): Promise<StoredEntry>;
  /**
   * Stores a fresh answer, fetched at `fetchedAt`: it replaces the previous one, clears the
   * negative entry and the failure record, and keeps `requestedAt` (or starts it at `fetchedAt`).
   */
  saveAnswer(kind: AnswerKind, module: string, data: Buffer, fetchedAt: number): Promise<void>;
  /**
   * Records "upstream does not have it" for `ttlMs`, with its kind (404 or 410). The last
   * answer, if any, is kept for later.
   */
  saveNotFound(kind: AnswerKind, module: string, notFound: RecordedNotFound, ttlMs: number): Promise<void>;
  /** Records a failed refresh for `ttlMs`, its kind, Retry-After and detail included. */
  saveFailure(kind: AnswerKind, module: string, failure: RecordedFailure, ttlMs: number): Promise<void>;
  /** Makes the answer due for a refresh (fetchedAt 0) without dropping it. No-op when there is none. */
  expire(kind: AnswerKind, module: string): Promise<void>;
  /**
   * A version of the module now exists: it joins the observed set (for `observedTtlMs` of the
   * store), and negative entries of the module are dropped. Atomic: concurrent observations
   * are all kept.
   */
  observe(module: string, version: string): Promise<void>;
  /** Drops negative entries and failure records of the module and expires both answers. */
  invalidate(module: string): Promise<void>;
  /**
   * Takes the refresh lease of one answer for `ttlMs` if nobody holds it. Only the holder of
   * `token` can release it; a crashed holder's lease ends with its TTL.
   */
  acquireLease(kind: AnswerKind, module: string, token: string, ttlMs: number): Promise<boolean>;
  /** Releases the lease if `token` still holds it. */
  releaseLease(kind: AnswerKind, module: string, token: string): Promise<void>;
  /** Resolves when the store answers; for readiness. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Retention options every store takes. */
export interface VersionStoreRetention {
  /**
   * How long an answer is kept after its last refresh, to be served when upstream fails.
   * Default: 7 days.
   */
  retainMs?: number;
  /** How long observed versions are remembered after the last observation. Default: 1 day. */
  observedTtlMs?: number;
}

export const DEFAULT_RETAIN_MS = 7 * 24 * 3_600_000;
export const DEFAULT_OBSERVED_TTL_MS = 24 * 3_600_000;
