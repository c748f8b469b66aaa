import { isPseudoVersion } from './pseudo';
import { compareVersions, isCanonicalVersion, isIncompatible, maxVersion, versionPrerelease } from './semver';

export interface ChooseLatestOptions {
  /**
   * Whether the highest compatible (not `+incompatible`) tagged version has a go.mod file.
   * The go command ignores `+incompatible` versions for `@latest` when it does (golang.org/issue/34165),
   * even preferring a compatible prerelease over an incompatible release; when it does not, the
   * module still versions the pre-modules way and `+incompatible` tags compete normally.
   * Default: true, since nearly every module tagged after 2019 has one.
   */
  latestCompatibleHasGoMod?: boolean;
}

/**
 * The version `@latest` resolves to among known versions, following the go command's query
 * for a proxy: the highest release, else the highest prerelease, pseudo-versions aside; if no
 * tagged version exists, the highest pseudo-version (Go's order, which for commits of one
 * branch is also the newest). `+incompatible` versions count only as
 * {@link ChooseLatestOptions.latestCompatibleHasGoMod} says. Invalid or non-canonical
 * versions are ignored. undefined when nothing usable is known.
 */
export function chooseLatest(
  versions: readonly string[],
  options: ChooseLatestOptions = {},
): string | undefined {
  const usable = versions.filter(isCanonicalVersion);
  let tagged = usable.filter((v) => !isPseudoVersion(v));
  const compatible = tagged.filter((v) => !isIncompatible(v));
  if ((options.latestCompatibleHasGoMod ?? true) && compatible.length > 0) tagged = compatible;
  const releases = tagged.filter((v) => versionPrerelease(v) === '');
  return maxVersion(releases) ?? maxVersion(tagged) ?? maxVersion(usable.filter(isPseudoVersion));
}

/**
 * What `/@v/list` serves: the tagged versions, i.e. canonical versions without pseudo-versions,
 * each once, ascending in Go's order.
 */
export function listVersions(versions: readonly string[]): string[] {
  const tagged = new Set(versions.filter((v) => isCanonicalVersion(v) && !isPseudoVersion(v)));
  return [...tagged].sort(compareVersions);
}
