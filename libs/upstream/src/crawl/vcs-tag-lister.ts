import { errors, type ModuleError } from '@modproxy/errors';
import { isValidModulePath } from '@modproxy/gomod';
import { GitCommand } from './git-command';
import { versionsFromTags, type TaggedVersions } from './module-tags';
import { VcsRepoResolver, type RepoLocation } from './vcs-repo-resolver';

export interface VcsTagListerOptions {
  git?: GitCommand;
  resolver?: VcsRepoResolver;
}

export interface ListingCallOptions {
  signal?: AbortSignal;
}

/** What the crawl learned of a module from its repository. */
export interface VcsListing extends TaggedVersions {
  location: RepoLocation;
}

const OP = 'upstream.vcs.list';
/** An excerpt of git's complaint is quoted in the operator's detail, never more. */
const EXCERPT_CHARS = 400;
/** What git says when the repository is not there or not ours to see (a crawler cannot tell them apart). */
const NOT_FOUND = [
  /repository not found/i,
  /not found/i,
  /does not exist/i,
  /does not appear to be a git repository/i,
  /terminal prompts disabled/i,
  /could not read (username|password)/i,
  /authentication failed/i,
  /returned error: (401|403|404|410)\b/i,
];

/**
 * Lists a module's versions from its git repository with `git ls-remote --tags` (the refs
 * only: never a clone, nothing fetched), the repository found as the go command finds it.
 */
export class VcsTagLister {
  readonly git: GitCommand;
  private readonly resolver: VcsRepoResolver;

  constructor(options: VcsTagListerOptions = {}) {
    this.git = options.git ?? new GitCommand();
    this.resolver = options.resolver ?? new VcsRepoResolver();
  }

  async list(module: string, options: ListingCallOptions = {}): Promise<VcsListing> {
    // A path starting with `-` would be an option to git; the go command's rules refuse it.
    if (!isValidModulePath(module))
      throw errors.invalidArgument(OP, `malformed module path "${module}"`, { module });
    const location = await this.resolver.resolve(module, options);
    const tags = await this.tags(module, location, options);
    try {
      return { ...versionsFromTags(module, location.root, tags, location.subdir), location };
    } catch (error) {
      throw errors.badGateway(OP, `${module}: ${(error as Error).message}`, { module });
    }
  }

  close(): void {
    this.resolver.close();
  }

  /** The tag names of the repository (`refs/tags/` stripped, peeled entries skipped). */
  private async tags(module: string, location: RepoLocation, options: ListingCallOptions): Promise<string[]> {
    const result = await this.git.run(['ls-remote', '--tags', '--refs', location.url], {
      op: OP,
      module,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (result.exitCode !== 0) throw listFailure(module, location, result.stderr);
    const tags: string[] = [];
    for (const line of result.stdout.split('\n')) {
      const ref = line.split('\t')[1]?.trim();
      if (ref?.startsWith('refs/tags/') && !ref.endsWith('^{}')) tags.push(ref.slice('refs/tags/'.length));
    }
    return tags;
  }
}

function listFailure(module: string, location: RepoLocation, stderr: string): ModuleError {
  const excerpt = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join('; ')
    .slice(-EXCERPT_CHARS);
  const detail = `git ls-remote ${location.url}: ${excerpt || 'no output'}`;
  if (NOT_FOUND.some((pattern) => pattern.test(stderr)))
    return errors.notFound(OP, `${module}: no repository at ${location.url}`, { module, detail });
  return errors.badGateway(OP, `${module}: listing tags of ${location.url} failed`, { module, detail });
}
