import { abortedByDeadline, errors, isModuleError, toModuleError, type ModuleError } from '@modproxy/errors';
import type { ModuleFilter } from '@modproxy/gomod';
import { OffUpstream } from './off-upstream';
import type { GoproxyListEntry } from './parse-goproxy';
import type { FetchedVersion, Upstream, UpstreamCallOptions, VersionFile } from './upstream';

export interface UpstreamChainLink {
  upstream: Upstream;
  /**
   * The separator after this link: `|` (true) tries the next link after any error, `,`
   * (false) only after `not-found` or `gone`.
   */
  fallThroughOnError: boolean;
  /**
   * Errors from this link are reported in preference to any other link's, as the go command
   * does for `direct` (its error explains more than a proxy's). @default false
   */
  preferErrors?: boolean;
}

/** How the upstreams named in a GOPROXY list are made. */
export interface UpstreamFactories {
  /** The `direct` entry: the module's VCS through the go command. */
  direct: () => Upstream;
  /** A proxy entry; `url` is http(s) as written in the list (with an implicit `https://` added). */
  goproxy: (url: string) => Upstream;
}

export interface UpstreamChainOptions {
  /**
   * Modules no upstream is ever asked about: they are refused with `forbidden` before the first
   * link. The apps refuse them at their edge too; this keeps background work (a revalidation
   * queued before the filter changed) from reaching upstream for them. @default none refused
   */
  moduleFilter?: ModuleFilter;
}

/** A link that cannot give a version's file on its own ends the walk with this answer. */
const CANNOT = Symbol('cannot give it alone');

/** How helpful an error is to the user (higher is better); the most helpful one is reported. */
const RANK_NOT_FOUND = 0;
const RANK_FAILURE = 1;
const RANK_PREFERRED = 2;

/**
 * Several upstreams with the go command's GOPROXY list semantics, applied to every method:
 * links are tried in order; the first answer wins; after an error the next link is tried only
 * if the error is `not-found`/`gone`, or the failed link is followed by `|`. A caller's abort
 * stops the walk at once (it is the caller's answer, not the upstream's).
 *
 * When every tried link failed, the error reported is the go command's "most helpful" one:
 * a `preferErrors` link's (i.e. `direct`), else the last failure other than not-found/gone,
 * else the last not-found/gone. So `A|B` with A failing and B answering 404 reports A's failure
 * (the module may well exist; A just could not say), and `A,B` both 404 reports B's.
 */
export class UpstreamChain implements Upstream {
  readonly name: string;
  private readonly links: readonly UpstreamChainLink[];
  private readonly moduleFilter: ModuleFilter | undefined;

  constructor(links: readonly UpstreamChainLink[], options: UpstreamChainOptions = {}) {
    if (links.length === 0)
      throw errors.invalidArgument('upstream.chain', 'an upstream chain needs at least one upstream');
    this.links = [...links];
    this.moduleFilter = options.moduleFilter;
    this.name = this.links
      .map(
        (link, i) =>
          link.upstream.name + (i === this.links.length - 1 ? '' : link.fallThroughOnError ? '|' : ','),
      )
      .join('');
  }
  async close(): Promise<void> {
    await Promise.all(this.links.map((link) => link.upstream.close?.()));
  }

  list(module: string, options: UpstreamCallOptions = {}): Promise<string[]> {
    return this.walk('list', module, undefined, options, (upstream) => upstream.list(module, options));
  }

  latest(module: string, options: UpstreamCallOptions = {}): Promise<Buffer> {
    return this.walk('latest', module, undefined, options, (upstream) => upstream.latest(module, options));
  }

  info(module: string, query: string, options: UpstreamCallOptions = {}): Promise<Buffer> {
    return this.walk('info', module, query, options, (upstream) => upstream.info(module, query, options));
  }

  fetch(module: string, version: string, options: UpstreamCallOptions = {}): Promise<FetchedVersion> {
    return this.walk('fetch', module, version, options, (upstream) =>
      upstream.fetch(module, version, options),
    );
  }

  /**
   * A version's `.info` or `.mod` on its own, with the list's rules, from the first link that
   * answers; undefined as soon as the walk reaches a link that cannot give it alone (`direct`):
   * the caller fetches the whole version, through the whole chain again.
   */
  async versionFile(
    module: string,
    version: string,
    file: VersionFile,
    options: UpstreamCallOptions = {},
  ): Promise<Buffer | undefined> {
    const answer = await this.walk(file, module, version, options, async (upstream) => {
      const bytes = upstream.versionFile
        ? await upstream.versionFile(module, version, file, options)
        : undefined;
      return bytes ?? CANNOT;
    });
    return answer === CANNOT ? undefined : answer;
  }

  private async walk<T>(
    method: string,
    module: string,
    version: string | undefined,
    options: UpstreamCallOptions,
    call: (upstream: Upstream) => Promise<T>,
  ): Promise<T> {
    const op = `upstream.chain.${method}`;
    this.moduleFilter?.check(op, module, version);
    let best: { error: ModuleError; rank: number } | undefined;
    for (const link of this.links) {
      if (options.signal?.aborted) throw abortError(op, options.signal, module, version);
      let error: ModuleError;
      try {
        return await call(link.upstream);
      } catch (thrown) {
        error = toModuleError(thrown, op);
      }
      if (error.kind === 'cancelled' || options.signal?.aborted) throw error;
      const notFound = isModuleError(error, 'not-found') || isModuleError(error, 'gone');
      if (link.preferErrors) best = { error, rank: RANK_PREFERRED };
      else if (!notFound && (best === undefined || best.rank <= RANK_FAILURE))
        best = { error, rank: RANK_FAILURE };
      else if (best === undefined || best.rank === RANK_NOT_FOUND) best = { error, rank: RANK_NOT_FOUND };
      if (!notFound && !link.fallThroughOnError) break;
    }
    // The loop ran at least once and every iteration that did not return set `best`.
    throw best?.error ?? errors.internal(op, `${this.name}: no upstream was tried`);
  }
}

/** The caller's signal fired between links: a deadline is `timeout`, a caller leaving `cancelled`. */
function abortError(
  op: string,
  signal: AbortSignal,
  module: string,
  version: string | undefined,
): ModuleError {
  const subject = version === undefined ? module : `${module}@${version}`;
  return abortedByDeadline(signal)
    ? errors.timeout(op, `${subject}: timed out asking upstream`, { module, version })
    : errors.cancelled(op, `${subject}: cancelled by the caller`, { module, version });
}

/**
 * Builds the chain a parsed GOPROXY list describes: `direct` from `factories.direct` (its
 * errors preferred, as the go command does), proxies from `factories.goproxy`, `off` as an
 * upstream that answers not-found to everything.
 */
export function createUpstreamChain(
  entries: readonly GoproxyListEntry[],
  factories: UpstreamFactories,
  options: UpstreamChainOptions = {},
): UpstreamChain {
  return new UpstreamChain(
    entries.map((entry): UpstreamChainLink => {
      switch (entry.kind) {
        case 'direct':
          return { upstream: factories.direct(), fallThroughOnError: false, preferErrors: true };
        case 'off':
          return { upstream: new OffUpstream(), fallThroughOnError: false };
        case 'proxy':
          return { upstream: factories.goproxy(entry.url), fallThroughOnError: entry.fallThroughOnError };
      }
    }),
    options,
  );
}
