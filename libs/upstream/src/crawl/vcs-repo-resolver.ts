import { errors, isModuleError } from '@modproxy/errors';
import { splitPathVersion } from '@modproxy/gomod';
import { GoGetDiscovery, type DiscoveryCallOptions } from './go-get-discovery';
import { matchGoImport } from './go-import-meta';

/** Where a module's code is: a git repository the crawl can list tags of. */
export interface RepoLocation {
  /** The module path prefix the repository holds (the go command's repo root). */
  root: string;
  /** The URL git is asked, e.g. `https://github.com/o/r`. */
  url: string;
  /** The go-import subdirectory the modules live under, '' for none. */
  subdir: string;
  /** How it was found: a known host's layout, the path's `.git` qualifier, or go-get discovery. */
  source: 'known-host' | 'vcs-qualifier' | 'go-get';
}

export interface VcsRepoResolverOptions {
  /** Discovery for paths of other hosts. @default a GoGetDiscovery with its defaults */
  discovery?: GoGetDiscovery;
  /** How long a discovered location is remembered. @default 3600000 */
  cacheTtlMs?: number;
  /** Locations remembered at most (the oldest go first). @default 10000 */
  cacheSize?: number;
  /** @default Date.now */
  now?: () => number;
}

const OP = 'upstream.vcs.resolve';
const ELEMENT = String.raw`[A-Za-z0-9_.\-]+`;
/** The layouts the go command knows without asking the host, and gitlab.com's simple case. */
const KNOWN_HOSTS: ReadonlyArray<{ host: string; root: RegExp }> = [
  { host: 'github.com', root: new RegExp(`^github\\.com/${ELEMENT}/${ELEMENT}`) },
  { host: 'bitbucket.org', root: new RegExp(`^bitbucket\\.org/${ELEMENT}/${ELEMENT}`) },
];
/** cmd/go's generic VCS-qualifier pattern, git only: `host/path.git[/sub]`, root up to `.git`. */
const GIT_QUALIFIER = /^(?<repo>([a-z0-9.-]+\.)+[a-z0-9.-]+(:[0-9]+)?(\/~?[\w.-]+)+?)\.git(\/~?[\w.-]+)*$/;
const OTHER_QUALIFIER =
  /^([a-z0-9.-]+\.)+[a-z0-9.-]+(:[0-9]+)?(\/~?[\w.-]+)+?\.(bzr|fossil|hg|svn)(\/~?[\w.-]+)*$/;

/**
 * Finds the git repository of a module path, as the go command does for `direct`, but only
 * as far as listing tags needs: known hosts by their layout (github.com and bitbucket.org:
 * the first three elements; gitlab.com too when the path without its major suffix has exactly
 * three elements, since deeper ones may be subgroups and need discovery), the `.git` VCS
 * qualifier in the path, and otherwise `?go-get=1` discovery over HTTPS (cached). Other VCSs,
 * `mod` (module proxy) entries and non-HTTPS repositories are `failed-precondition`: their
 * versions come from lathens' own list, not from the crawl.
 */
export class VcsRepoResolver {
  private readonly discovery: GoGetDiscovery;
  private readonly cacheTtlMs: number;
  private readonly cacheSize: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, { location: RepoLocation; until: number }>();

  constructor(options: VcsRepoResolverOptions = {}) {
    this.discovery = options.discovery ?? new GoGetDiscovery();
    this.cacheTtlMs = options.cacheTtlMs ?? 3_600_000;
    this.cacheSize = Math.max(1, options.cacheSize ?? 10_000);
    this.now = options.now ?? Date.now;
  }

  async resolve(module: string, options: DiscoveryCallOptions = {}): Promise<RepoLocation> {
    const known = knownLocation(module);
    if (known) return known;
    const cached = this.cache.get(module);
    if (cached && cached.until > this.now()) return cached.location;
    const location = await this.discover(module, options);
    this.remember(module, location);
    return location;
  }

  close(): void {
    this.discovery.close();
  }

  private async discover(module: string, options: DiscoveryCallOptions): Promise<RepoLocation> {
    const entry = matchGoImport(await this.lookup(module, options), module);
    if (!entry)
      throw errors.notFound(OP, `${module}: no go-import meta tag matches the module path`, { module });
    // As the go command does: a page claiming a shorter prefix must be confirmed by that prefix's own page.
    if (entry.prefix !== module) {
      const confirmed = matchGoImport(await this.lookup(entry.prefix, options), entry.prefix);
      if (
        !confirmed ||
        confirmed.prefix !== entry.prefix ||
        confirmed.vcs !== entry.vcs ||
        confirmed.repoRoot !== entry.repoRoot
      )
        throw errors.badGateway(
          OP,
          `${module}: the go-import meta tag of ${entry.prefix} does not confirm ${module}'s`,
          {
            module,
          },
        );
    }
    if (entry.vcs !== 'git')
      throw errors.failedPrecondition(
        OP,
        `${module} is in a ${entry.vcs} repository; the crawl lists git tags only`,
        {
          module,
        },
      );
    let url: URL;
    try {
      url = new URL(entry.repoRoot);
    } catch {
      throw errors.badGateway(OP, `${module}: go-import names an invalid repository URL`, { module });
    }
    if (url.protocol !== 'https:' || url.username !== '' || url.password !== '')
      throw errors.failedPrecondition(
        OP,
        `${module}: the crawl lists repositories over plain https:// only`,
        { module },
      );
    return { root: entry.prefix, url: url.href.replace(/\/+$/, ''), subdir: entry.subdir, source: 'go-get' };
  }

  private async lookup(path: string, options: DiscoveryCallOptions) {
    try {
      return await this.discovery.lookup(path, options);
    } catch (error) {
      if (isModuleError(error)) throw error;
      throw errors.badGateway(OP, `${path}: ${(error as Error).message}`, { module: path });
    }
  }

  private remember(module: string, location: RepoLocation): void {
    this.cache.delete(module);
    this.cache.set(module, { location, until: this.now() + this.cacheTtlMs });
    while (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
  }
}

/** The location of a path the go command resolves without asking its host, if it is one. */
export function knownLocation(module: string): RepoLocation | undefined {
  for (const { root } of KNOWN_HOSTS) {
    const match = root.exec(module);
    if (match) return { root: match[0], url: `https://${match[0]}`, subdir: '', source: 'known-host' };
  }
  if (module.startsWith('gitlab.com/')) {
    const elements = splitPathVersion(module).prefix.split('/');
    if (elements.length === 3) {
      const root = elements.join('/');
      return { root, url: `https://${root}`, subdir: '', source: 'known-host' };
    }
  }
  const qualified = GIT_QUALIFIER.exec(module);
  if (qualified?.groups?.['repo']) {
    const repo = qualified.groups['repo'];
    return { root: `${repo}.git`, url: `https://${repo}`, subdir: '', source: 'vcs-qualifier' };
  }
  if (OTHER_QUALIFIER.test(module))
    throw errors.failedPrecondition(
      OP,
      `${module} names a repository that is not git; the crawl lists git tags only`,
      {
        module,
      },
    );
  return undefined;
}
