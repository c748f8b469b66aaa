import type { Readable } from 'node:stream';

/** Options every storage call accepts: cancellation (and with it, deadlines). */
export interface CallOptions {
  signal?: AbortSignal;
}

export interface ModuleVersionRef {
  /** Module path, unescaped (e.g. `github.com/Azure/azure-sdk`). */
  module: string;
  /** Canonical semantic version (e.g. `v1.2.3`, `v0.0.0-20240101000000-abcdefabcdef`). */
  version: string;
}

export interface ZipContent {
  /** Size of the zip in bytes, known before the first byte is read. */
  size: number;
  /** The zip bytes. The caller must consume or destroy it. */
  stream: Readable;
  /**
   * Hex SHA-256 of the zip, when the backend knows it before streaming (it was checked when the
   * version was saved): a copy, a cache's say, can be checked against it. Default: unknown.
   */
  sha256?: string;
}

export interface SaveInput extends ModuleVersionRef {
  /** The `.info` JSON exactly as it will be served. */
  info: Buffer;
  /** The `go.mod` bytes exactly as they will be served. */
  mod: Buffer;
  /** The zip bytes; read once, streamed, never buffered whole. */
  zip: Readable;
  /**
   * Hex SHA-256 of the zip, when the caller knows it. A save whose zip does not match is
   * rejected (`invalid-argument`) and leaves nothing behind.
   */
  zipSha256?: string;
}

export interface CatalogPage {
  entries: ModuleVersionRef[];
  /** Opaque token for the next page; absent on the last page. */
  nextPageToken?: string;
}

export interface CatalogOptions extends CallOptions {
  pageSize: number;
  pageToken?: string;
}

/** A stored version and when it was stored. */
export interface IndexEntry extends ModuleVersionRef {
  /** When the save completed, to the millisecond (the backend's clock). */
  storedAt: Date;
}

export interface IndexOptions extends CallOptions {
  /** Only versions stored at or after this moment. Default: every stored version. */
  since?: Date;
  /** Entries per page, from 1 to 10000. */
  limit: number;
  /** The `nextPageToken` of the previous page: continue strictly after its last entry. */
  pageToken?: string;
}

export interface IndexPage {
  entries: IndexEntry[];
  /** Opaque token for the next page; absent on the last page. */
  nextPageToken?: string;
}

/**
 * The storage port. Module content is immutable: a version is saved once, completely and
 * atomically, or not at all. Errors are `ModuleError`s from @modproxy/errors:
 * `not-found` for a missing module or version, `already-exists` when a save finds the
 * version there, `invalid-argument` for a path or version that the Go rules reject.
 */
export interface ModuleStorage {
  exists(module: string, version: string, options?: CallOptions): Promise<boolean>;
  info(module: string, version: string, options?: CallOptions): Promise<Buffer>;
  mod(module: string, version: string, options?: CallOptions): Promise<Buffer>;
  zip(module: string, version: string, options?: CallOptions): Promise<ZipContent>;
  save(input: SaveInput, options?: CallOptions): Promise<void>;
  /** Every stored version of exactly this module (not `a/b/v2` for `a/b`), in Go's version order. */
  list(module: string, options?: CallOptions): Promise<string[]>;
  delete(module: string, version: string, options?: CallOptions): Promise<void>;
  /** Every stored module version, ordered by module path then version (plain byte order, so every backend can page by key), paged. */
  catalog(options: CatalogOptions): Promise<CatalogPage>;
  /**
   * Every stored version in the order it was stored: by `storedAt`, then module path and
   * version in byte order (so equal times still page exactly once), paged. Feeds mirrors and
   * crawlers (`/index`).
   */
  index(options: IndexOptions): Promise<IndexPage>;
  close(): Promise<void>;
}
