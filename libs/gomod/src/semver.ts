/**
 * Semantic versions as the go command reads them (golang.org/x/mod/semver): a leading `v`,
 * shorthands `vMAJOR` and `vMAJOR.MINOR` accepted as valid, prerelease after `-`, build
 * metadata after `+`. Everything here is total: invalid input never throws, it is reported
 * as invalid and sorts below every valid version.
 */

interface ParsedVersion {
  major: string;
  minor: string;
  patch: string;
  /** What a shorthand lacks to become `vX.Y.Z` (`.0.0`, `.0` or ''). */
  short: string;
  /** Including the leading `-`, or ''. */
  prerelease: string;
  /** Including the leading `+`, or ''. */
  build: string;
}

const NUMBER = /^(0|[1-9][0-9]*)/;
const IDENT = /^[0-9A-Za-z-]+$/;

function parseVersion(v: string): ParsedVersion | undefined {
  if (!v.startsWith('v')) return undefined;
  let rest = v.slice(1);
  const take = (): string | undefined => {
    const m = NUMBER.exec(rest);
    if (!m) return undefined;
    rest = rest.slice(m[0].length);
    return m[0];
  };
  const major = take();
  if (major === undefined) return undefined;
  if (rest === '') return { major, minor: '0', patch: '0', short: '.0.0', prerelease: '', build: '' };
  if (!rest.startsWith('.')) return undefined;
  rest = rest.slice(1);
  const minor = take();
  if (minor === undefined) return undefined;
  if (rest === '') return { major, minor, patch: '0', short: '.0', prerelease: '', build: '' };
  if (!rest.startsWith('.')) return undefined;
  rest = rest.slice(1);
  const patch = take();
  if (patch === undefined) return undefined;

  let prerelease = '';
  let build = '';
  if (rest.startsWith('-')) {
    const end = rest.indexOf('+');
    prerelease = end < 0 ? rest : rest.slice(0, end);
    if (!validPrerelease(prerelease.slice(1))) return undefined;
    rest = rest.slice(prerelease.length);
  }
  if (rest.startsWith('+')) {
    build = rest;
    if (!validBuild(build.slice(1))) return undefined;
    rest = '';
  }
  if (rest !== '') return undefined;
  return { major, minor, patch, short: '', prerelease, build };
}

function validPrerelease(body: string): boolean {
  // Numeric identifiers must not have leading zeros; alphanumeric ones may look like anything.
  return body
    .split('.')
    .every((id) => IDENT.test(id) && !(isNumeric(id) && id.length > 1 && id.startsWith('0')));
}

function validBuild(body: string): boolean {
  return body.split('.').every((id) => IDENT.test(id));
}

function isNumeric(id: string): boolean {
  return /^[0-9]+$/.test(id);
}

function compareNumbers(x: string, y: string): -1 | 0 | 1 {
  // Both are canonical decimal strings (no leading zeros), so length decides first.
  if (x === y) return 0;
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : 1;
}

function comparePrerelease(x: string, y: string): -1 | 0 | 1 {
  if (x === y) return 0;
  // A version without prerelease is newer than any prerelease of it.
  if (x === '') return 1;
  if (y === '') return -1;
  const xs = x.slice(1).split('.');
  const ys = y.slice(1).split('.');
  for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
    const dx = xs[i] ?? '';
    const dy = ys[i] ?? '';
    if (dx === dy) continue;
    const nx = isNumeric(dx);
    const ny = isNumeric(dy);
    if (nx !== ny) return nx ? -1 : 1;
    if (nx) return compareNumbers(dx, dy);
    return dx < dy ? -1 : 1;
  }
  // Every shared identifier is equal: the one with more identifiers is newer.
  return xs.length < ys.length ? -1 : 1;
}

/** Whether `v` is a valid semantic version in Go's spelling (shorthands `v1`, `v1.2` included). */
export function isValidSemver(v: string): boolean {
  return parseVersion(v) !== undefined;
}

/**
 * The canonical spelling the go command uses (golang.org/x/mod/module.CanonicalVersion):
 * shorthands completed (`v1` → `v1.0.0`), build metadata dropped except `+incompatible`.
 * '' for an invalid version.
 */
export function canonicalVersion(v: string): string {
  const p = parseVersion(v);
  if (!p) return '';
  const base = `v${p.major}.${p.minor}.${p.patch}${p.prerelease}`;
  return p.build === '+incompatible' ? `${base}+incompatible` : base;
}

/**
 * Whether `v` is a version a proxy may serve `.mod`/`.zip`/`.info` for: valid and already
 * spelled canonically (so `v1.2` and `v1.2.3+meta` are not, `v2.0.0+incompatible` is).
 */
export function isCanonicalVersion(v: string): boolean {
  return v !== '' && canonicalVersion(v) === v;
}

/** `+incompatible` build suffix: a v2+ tag of a repository without a go.mod declaring /vN. */
export function isIncompatible(v: string): boolean {
  return parseVersion(v)?.build === '+incompatible';
}

/** `vN` for a valid version, '' otherwise. */
export function versionMajor(v: string): string {
  const p = parseVersion(v);
  return p ? `v${p.major}` : '';
}

/** `vN.M` for a valid version, '' otherwise. */
export function versionMajorMinor(v: string): string {
  const p = parseVersion(v);
  return p ? `v${p.major}.${p.minor}` : '';
}

/** The prerelease including its leading `-` (`-rc.1`), '' if none or invalid. */
export function versionPrerelease(v: string): string {
  return parseVersion(v)?.prerelease ?? '';
}

/** The build metadata including its leading `+` (`+incompatible`), '' if none or invalid. */
export function versionBuild(v: string): string {
  return parseVersion(v)?.build ?? '';
}

/**
 * Semantic precedence exactly as golang.org/x/mod/semver.Compare: build metadata ignored,
 * invalid versions equal to each other and lower than every valid one. `v1` and `v1.0.0`
 * compare equal here; use {@link compareVersions} for a total order.
 */
export function compareSemver(a: string, b: string): -1 | 0 | 1 {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa && !pb) return 0;
  if (!pa) return -1;
  if (!pb) return 1;
  return (
    compareNumbers(pa.major, pb.major) ||
    compareNumbers(pa.minor, pb.minor) ||
    compareNumbers(pa.patch, pb.patch) ||
    comparePrerelease(pa.prerelease, pb.prerelease)
  );
}

/**
 * Go's version order made total, as semver.Sort does: semantic precedence first, then plain
 * string order for versions of equal precedence (`v1` < `v1.0.0`, `v1.0.0+a` < `v1.0.0+b`,
 * invalid strings among themselves), so sorting is deterministic. 0 only for identical strings.
 */
export function compareVersions(a: string, b: string): -1 | 0 | 1 {
  const c = compareSemver(a, b);
  if (c !== 0) return c;
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/** Ascending by {@link compareVersions}; returns a new array. */
export function sortVersions(versions: readonly string[]): string[] {
  return [...versions].sort(compareVersions);
}

/** The highest of `versions` by {@link compareVersions}, undefined for an empty list. */
export function maxVersion(versions: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const v of versions) if (best === undefined || compareVersions(v, best) > 0) best = v;
  return best;
}
