import type { HostState } from '@modproxy/queue';

/** Who fetched a version: this process (the embedded default), or crathens through the fetch queue. */
export type FetchedBy = 'this process' | 'fetch queue';

/** A version recently fetched from upstream and stored. */
export interface FetchedVersion {
  module: string;
  version: string;
  /** When the fetch ended. */
  at: Date;
  /** How long it took, when known. */
  durationMs?: number;
  by: FetchedBy;
  /** A fetch job's own account: it fetched, or found the version already stored (a no-op). */
  result?: 'fetched' | 'already-stored';
}

/** A fetch that failed recently. */
export interface FetchFailure {
  module: string;
  version: string;
  /** The ModuleError kind, e.g. `not-found`, `bad-gateway`, `timeout`. */
  kind: string;
  /** What a client was told. */
  message: string;
  /**
   * The operator-only detail (which upstream, what it answered), redacted. A fetch job's failure
   * carries none (it stays in crathens' log), unless BullMQ failed it itself (stalled too often).
   */
  detail?: string;
  at: Date;
  by: FetchedBy;
  /** Attempts a fetch job made before it failed. */
  attempts?: number;
}

/** What became of a read from the queue Redis. */
export type QueueReadState =
  { state: 'ok' } | { state: 'unavailable'; reason: string } | { state: 'not-configured' };

/** Everything the status page shows, read at one moment. */
export interface StatusSnapshot {
  generatedAt: Date;
  /** Newest first: this process's own fetches and the fetch queue's completed jobs. */
  fetched: FetchedVersion[];
  /** Newest first: this process's failed fetches and the fetch queue's failed jobs. */
  failures: FetchFailure[];
  /** Whether the fetch queue's history could be read (without it, only this process's own lists). */
  queue: QueueReadState;
  /** Whether the hosts' state could be read. */
  hostsState: QueueReadState;
  /** Per-host politeness state (crathens' crawl and fetches), most recently used first. */
  hosts: HostState[];
}
