import type { Readable } from 'node:stream';

/** The files of a version an upstream may give on their own. */
export type VersionFile = 'info' | 'mod';

export interface UpstreamCallOptions {
  signal?: AbortSignal;
}

/** A module version fetched from an upstream, held in a temporary place until `release()`. */
export interface FetchedVersion {
  module: string;
  /** The canonical version (a query such as a commit hash is resolved to it). */
  version: string;
  /** `.info` JSON bytes: at least Version and Time, Origin passed through when present. */
  info: Buffer;
  mod: Buffer;
  zipSize: number;
  /**
   * The zip as a local file (every upstream downloads to a temporary file first), so that
   * it can be verified with random access before it is stored.
   */
  zipPath: string;
  /** Opens the zip for reading; may be called more than once until `release()`. */
  openZip(): Readable;
  /** Removes the temporary files. Idempotent. */
  release(): Promise<void>;
}

/**
 * Where module versions come from: an upstream GOPROXY, the VCS through the go command, or a
 * chain of them with the go command's GOPROXY list semantics. Errors are `ModuleError`s:
 * `not-found`/`gone` when the upstream does not have it (the chain falls through on these
 * after a `,`), `timeout` when a deadline passed, `bad-gateway` for any other upstream failure.
 */
export interface Upstream {
  /** A short description for logs and errors, e.g. `direct` or `https://proxy.example`. */
  readonly name: string;
  /** Tagged versions of the module (what `/@v/list` serves), in no particular order. */
  list(module: string, options?: UpstreamCallOptions): Promise<string[]>;
  /** `.info` JSON of the module's latest version (what `/@latest` serves). */
  latest(module: string, options?: UpstreamCallOptions): Promise<Buffer>;
  /**
   * `.info` JSON for a version or a version query (a commit hash, a branch, a tag name):
   * the Version field is the canonical version it resolves to.
   */
  info(module: string, query: string, options?: UpstreamCallOptions): Promise<Buffer>;
  /** Fetch the whole version (info, go.mod and zip) for a canonical version. */
  fetch(module: string, version: string, options?: UpstreamCallOptions): Promise<FetchedVersion>;
  /**
   * One file of a canonical version, its `.info` (checked as `fetch` checks it) or its `.mod`,
   * without the zip, when this upstream can give it on its own cheaply: an upstream GOPROXY (one
   * small GET). Resolves undefined when it cannot (`direct`: the go command would clone the
   * repository, which the whole fetch does anyway), and an upstream without the method cannot.
   * What it gives is unverified: only the zip's verification vouches for a go.mod.
   */
  versionFile?(
    module: string,
    version: string,
    file: VersionFile,
    options?: UpstreamCallOptions,
  ): Promise<Buffer | undefined>;
  /** Releases connections (keep-alive pools); upstreams that hold none need not have it. */
  close?(): Promise<void>;
}
