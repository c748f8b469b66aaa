import {
  isCanonicalVersion,
  isPseudoVersion,
  matchPathMajor,
  splitPathVersion,
  versionBuild,
  versionMajor,
} from '@modproxy/gomod';

/** A module's versions as its repository's tags show them. */
export interface TaggedVersions {
  /** Versions the go command lists for these tags (`go list -m -versions`), in no particular order. */
  versions: string[];
  /**
   * `vN.x.y+incompatible` candidates (v2+ tags at the root of a module path without a major
   * suffix). The go command lists them only when the tagged commit has no go.mod (and the
   * latest compatible version has none either), which tags alone cannot tell: they need
   * confirming by a source that reads go.mod (lathens' list from upstream).
   */
  unconfirmed: string[];
}

/**
 * Maps the tags of a repository rooted at `repoRoot` (a module path prefix, e.g.
 * `github.com/o/r`) to versions of `module`, as the go command's codeRepo does:
 *
 * - the module's directory in the repository is its path without the major suffix, relative
 *   to the root (`github.com/o/r/sub/v2` → `sub`), and only tags `sub/vX.Y.Z` count; a `/vN`
 *   module in a `vN/` subdirectory still uses plain `vN.x.y` tags;
 * - a tag counts only when it is a canonical semantic version without build metadata, not a
 *   pseudo-version, and of the path's major (`/v2` takes v2.x.y only; none takes v0 and v1);
 * - v2+ tags of a root module without a major suffix are `+incompatible` candidates
 *   ({@link TaggedVersions.unconfirmed}).
 *
 * `subdir` is the go-import meta tag's subdirectory, when the repository keeps the module
 * under one. Throws when the root cannot contain the module.
 */
export function versionsFromTags(
  module: string,
  repoRoot: string,
  tags: Iterable<string>,
  subdir = '',
): TaggedVersions {
  const { prefix, pathMajor, ok } = splitPathVersion(module);
  if (!ok) throw new Error(`invalid module path ${module}`);
  // gopkg.in/x.v2-unstable does not use the v2 tags, which are gopkg.in/x.v2's: it has none.
  if (module.startsWith('gopkg.in/') && module.endsWith('-unstable'))
    return { versions: [], unconfirmed: [] };
  let codeDir = '';
  if (repoRoot !== module) {
    if (!hasPathPrefix(prefix, repoRoot))
      throw new Error(`repository rooted at ${repoRoot} cannot contain module ${module}`);
    codeDir = prefix.slice(repoRoot.length).replace(/^\/+|\/+$/g, '');
  }
  codeDir = [subdir.replace(/^\/+|\/+$/g, ''), codeDir].filter((part) => part !== '').join('/');
  const tagPrefix = codeDir === '' ? '' : `${codeDir}/`;
  const versions = new Set<string>();
  const incompatible = new Set<string>();
  for (const tag of tags) {
    if (!tag.startsWith(tagPrefix)) continue;
    const version = tag.slice(tagPrefix.length);
    // semver.Canonical drops build metadata, so a tag carrying any (even +incompatible) is not canonical.
    if (!isCanonicalVersion(version) || versionBuild(version) !== '' || isPseudoVersion(version)) continue;
    if (matchPathMajor(version, pathMajor)) {
      versions.add(version);
    } else if (codeDir === '' && pathMajor === '' && versionMajor(version) > 'v1') {
      incompatible.add(`${version}+incompatible`);
    }
  }
  return { versions: [...versions], unconfirmed: [...incompatible] };
}

/** Whether `path` is `prefix` or below it, element-wise (`a/b` is under `a`, `ab` is not). */
export function hasPathPrefix(path: string, prefix: string): boolean {
  if (prefix === '') return true;
  return (
    path === prefix || (path.startsWith(prefix) && (prefix.endsWith('/') || path[prefix.length] === '/'))
  );
}
