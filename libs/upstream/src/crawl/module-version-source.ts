import { z } from 'zod';
import { errors, isModuleError, toModuleError, type ModuleError } from '@modproxy/errors';
import type { ModuleFilter } from '@modproxy/gomod';
import { parseGoproxyList } from '../parse-goproxy';
import type { Upstream } from '../upstream';
import { createUpstreamFromConfig, moduleFilterFromConfig, type UpstreamConfig } from '../upstream-config';
import { GitCommand } from './git-command';
import { GoGetDiscovery } from './go-get-discovery';
import type { Agent } from 'node:https';
import { VcsRepoResolver } from './vcs-repo-resolver';
import { VcsTagLister, type ListingCallOptions } from './vcs-tag-lister';

/** The versions a crawl found for a module, and where. */
export interface ModuleListing {
  /** Versions the source lists (as `go list -m -versions` would), in no particular order. */
  versions: string[];
  /** Versions that need confirming by a source that reads go.mod (`+incompatible` candidates from tags). */
  unconfirmed: string[];
  /** Which source answered, e.g. `git ls-remote https://github.com/o/r` or an upstream proxy's name. */
  source: string;
}

/** Where a crawl asks for a module's versions. Errors are ModuleErrors, as an Upstream's. */
export interface ModuleVersionSource {
  readonly name: string;
  list(module: string, options?: ListingCallOptions): Promise<ModuleListing>;
  close(): Promise<void>;
}

/** `direct`: the module's git repository, tags listed with `git ls-remote` (never cloned). */
export class VcsVersionSource implements ModuleVersionSource {
  readonly name = 'direct';

  constructor(readonly lister: VcsTagLister) {}

  async list(module: string, options: ListingCallOptions = {}): Promise<ModuleListing> {
    const listing = await this.lister.list(module, options);
    return {
      versions: listing.versions,
      unconfirmed: listing.unconfirmed,
      source: `git ls-remote ${listing.location.url}`,
    };
  }

  async close(): Promise<void> {
    this.lister.close();
  }
}

/** An upstream proxy: its `/@v/list`, which is already what the go command lists. */
export class UpstreamVersionSource implements ModuleVersionSource {
  constructor(private readonly upstream: Upstream) {}

  get name(): string {
    return this.upstream.name;
  }

  async list(module: string, options: ListingCallOptions = {}): Promise<ModuleListing> {
    const versions = await this.upstream.list(module, options);
    return { versions, unconfirmed: [], source: this.upstream.name };
  }

  async close(): Promise<void> {
    await this.upstream.close?.();
  }
}

interface SourceLink {
  source: ModuleVersionSource;
  /** `|` after it: the next source is asked after any error, not only after not-found/gone. */
  fallThroughOnError: boolean;
}

/**
 * Sources in GOPROXY list order with its rules: the first answer wins; the next source is
 * asked after not-found/gone, or after any error when the failed source is followed by `|`.
 * A refused module (the module filter) is never asked about.
 */
export class VersionSourceChain implements ModuleVersionSource {
  readonly name: string;

  constructor(
    private readonly links: readonly SourceLink[],
    private readonly moduleFilter?: ModuleFilter,
  ) {
    if (links.length === 0)
      throw errors.invalidArgument('upstream.crawl', 'a version source chain needs a source');
    this.name = links.map((link) => link.source.name).join(',');
  }

  async list(module: string, options: ListingCallOptions = {}): Promise<ModuleListing> {
    const op = 'upstream.crawl.list';
    this.moduleFilter?.check(op, module);
    let last: ModuleError | undefined;
    for (const link of this.links) {
      try {
        return await link.source.list(module, options);
      } catch (thrown) {
        last = toModuleError(thrown, op, { module });
      }
      if (last.kind === 'cancelled' || options.signal?.aborted) throw last;
      const notFound = isModuleError(last, 'not-found') || isModuleError(last, 'gone');
      if (!notFound && !link.fallThroughOnError) break;
    }
    throw last ?? errors.internal(op, 'no version source was asked', { module });
  }

  async close(): Promise<void> {
    await Promise.all(this.links.map((link) => link.source.close()));
  }
}

/** Never has any module (`off`). */
class OffVersionSource implements ModuleVersionSource {
  readonly name = 'off';

  async list(module: string): Promise<ModuleListing> {
    throw errors.notFound('upstream.crawl.off', `${module}: upstream is off`, { module });
  }

  async close(): Promise<void> {}
}

/** The variables of crawl listing beyond the shared upstream ones. */
export const versionSourceConfigShape = {
  /** The git binary `direct` listings run (`git ls-remote --tags`). */
  GIT_BINARY: z.string().min(1).default('git'),
};

export type VersionSourceConfig = UpstreamConfig & z.infer<z.ZodObject<typeof versionSourceConfigShape>>;

export interface VersionSourceFromConfigOptions {
  /** More environment for git (tests point it at fixture repositories). */
  gitEnv?: Record<string, string>;
  /** The HTTPS agent of go-get discovery (tests connect it to a loopback server). */
  discoveryAgent?: Agent;
}

/**
 * The crawl's version source for the upstream the configuration describes: the same GOPROXY
 * list, each proxy listed through the same upstream client the fetches use (same deadline,
 * credentials and module filter), `direct` through `git ls-remote` under UPSTREAM_TIMEOUT_MS.
 */
export function createVersionSourceFromConfig(
  config: VersionSourceConfig,
  options: VersionSourceFromConfigOptions = {},
): VersionSourceChain {
  const links = parseGoproxyList(config.UPSTREAM).map((entry): SourceLink => {
    switch (entry.kind) {
      case 'proxy':
        return {
          source: new UpstreamVersionSource(
            createUpstreamFromConfig(
              { ...config, UPSTREAM: entry.url },
              { fetchTimeoutMs: config.UPSTREAM_TIMEOUT_MS },
            ),
          ),
          fallThroughOnError: entry.fallThroughOnError,
        };
      case 'direct': {
        const git = new GitCommand({
          gitBinary: config.GIT_BINARY,
          timeoutMs: config.UPSTREAM_TIMEOUT_MS,
          ...(config.NETRC_PATH ? { netrcPath: config.NETRC_PATH } : {}),
          ...(options.gitEnv ? { env: options.gitEnv } : {}),
        });
        const discovery = new GoGetDiscovery({
          timeoutMs: config.UPSTREAM_TIMEOUT_MS,
          ...(options.discoveryAgent ? { agent: options.discoveryAgent } : {}),
        });
        const lister = new VcsTagLister({ git, resolver: new VcsRepoResolver({ discovery }) });
        return { source: new VcsVersionSource(lister), fallThroughOnError: false };
      }
      case 'off':
        return { source: new OffVersionSource(), fallThroughOnError: false };
    }
  });
  return new VersionSourceChain(links, moduleFilterFromConfig(config));
}
