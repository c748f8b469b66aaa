import { errors } from '@modproxy/errors';
import { canonicalVersion, isValidSemver, versionBuild, versionMajor, versionPrerelease } from './semver';

/**
 * Pseudo-versions (x/mod module pseudo.go): a commit without a tag, spelled so that it sorts
 * just after the tag it descends from. Three forms, each optionally `+incompatible`:
 *   vX.0.0-yyyymmddhhmmss-rev            no tag to build on
 *   vX.Y.Z-pre.0.yyyymmddhhmmss-rev      after the prerelease tag vX.Y.Z-pre
 *   vX.Y.(Z+1)-0.yyyymmddhhmmss-rev      after the release tag vX.Y.Z
 */

const PSEUDO =
  /^v[0-9]+\.(0\.0-|[0-9]+\.[0-9]+-([^+]*\.)?0\.)[0-9]{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

interface PseudoParts {
  /** `vX.0.0`, `vX.Y.Z-pre.0` or `vX.Y.(Z+1)-0`. */
  base: string;
  timestamp: string;
  rev: string;
  /** `+incompatible` or ''. */
  build: string;
}

export function isPseudoVersion(v: string): boolean {
  return (v.match(/-/g)?.length ?? 0) >= 2 && isValidSemver(v) && PSEUDO.test(v);
}

function parsePseudo(op: string, v: string): PseudoParts {
  if (!isPseudoVersion(v)) {
    throw errors.invalidArgument(op, `invalid pseudo-version "${v}": syntax error`, { version: v });
  }
  const build = versionBuild(v);
  const body = v.slice(0, v.length - build.length);
  const lastDash = body.lastIndexOf('-');
  const rev = body.slice(lastDash + 1);
  const rest = body.slice(0, lastDash);
  const dash = rest.lastIndexOf('-');
  const dot = rest.lastIndexOf('.');
  if (dot > dash) return { base: rest.slice(0, dot), timestamp: rest.slice(dot + 1), rev, build };
  return { base: rest.slice(0, dash), timestamp: rest.slice(dash + 1), rev, build };
}

/** The commit time encoded in a pseudo-version (UTC); throws invalid-argument otherwise. */
export function pseudoVersionTime(v: string): Date {
  const { timestamp } = parsePseudo('gomod.pseudoVersionTime', v);
  const [y, mo, d, h, mi, s] = [0, 4, 6, 8, 10, 12].map((at, i) =>
    Number(timestamp.slice(at, i === 0 ? 4 : at + 2)),
  );
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, takes years 0-99 literally (the zero pseudo-version is in year 1).
  date.setUTCFullYear(y ?? 0, (mo ?? 0) - 1, d);
  date.setUTCHours(h ?? 0, mi, s, 0);
  // Date.UTC rolls 2020-02-30 over into March; Go's time.Parse refuses it, and so do we.
  const roundTrip =
    date.getUTCFullYear() === y &&
    date.getUTCMonth() + 1 === mo &&
    date.getUTCDate() === d &&
    date.getUTCHours() === h &&
    date.getUTCMinutes() === mi &&
    date.getUTCSeconds() === s;
  if (!roundTrip) {
    throw errors.invalidArgument(
      'gomod.pseudoVersionTime',
      `invalid pseudo-version "${v}": malformed time "${timestamp}"`,
      {
        version: v,
      },
    );
  }
  return date;
}

/** The revision (short commit hash) a pseudo-version names; throws invalid-argument otherwise. */
export function pseudoVersionRev(v: string): string {
  return parsePseudo('gomod.pseudoVersionRev', v).rev;
}

function decrementDecimal(decimal: string): string {
  if (/^0+$/.test(decimal)) return '';
  const n = BigInt(decimal) - 1n;
  return n.toString();
}

/**
 * The tag a pseudo-version was derived from (`+incompatible` kept), or '' for the first form,
 * which has none. Throws invalid-argument for a non-pseudo-version and for nonsensical ones
 * (`vX.0.0-…+incompatible`, a `-0.` form whose patch is 0).
 */
export function pseudoVersionBase(v: string): string {
  const op = 'gomod.pseudoVersionBase';
  const { base, build } = parsePseudo(op, v);
  const pre = versionPrerelease(base);
  if (pre === '') {
    if (build !== '') {
      throw errors.invalidArgument(
        op,
        `invalid pseudo-version "${v}": lacks base version, but has build metadata "${build}"`,
        {
          version: v,
        },
      );
    }
    return '';
  }
  if (pre === '-0') {
    const release = base.slice(0, -pre.length);
    const dot = release.lastIndexOf('.');
    const patch = decrementDecimal(release.slice(dot + 1));
    if (patch === '') {
      throw errors.invalidArgument(
        op,
        `invalid pseudo-version "${v}": version before ${release} would have negative patch number`,
        {
          version: v,
        },
      );
    }
    return release.slice(0, dot + 1) + patch + build;
  }
  return base.slice(0, -'.0'.length) + build;
}

/** Whether `v` is the pseudo-version of no commit at all (`vX.0.0-00010101000000-000000000000`). */
export function isZeroPseudoVersion(v: string): boolean {
  const major = versionMajor(v);
  return major !== '' && v === `${major}.0.0-00010101000000-000000000000`;
}

/**
 * Builds the pseudo-version for commit `rev` at `time` descending from tag `older` ('' for
 * none) in major version `major` (x/mod module.PseudoVersion).
 */
export function pseudoVersion(major: string, older: string, time: Date, rev: string): string {
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const stamp =
    pad(time.getUTCFullYear(), 4) +
    pad(time.getUTCMonth() + 1) +
    pad(time.getUTCDate()) +
    pad(time.getUTCHours()) +
    pad(time.getUTCMinutes()) +
    pad(time.getUTCSeconds());
  const segment = `${stamp}-${rev}`;
  const build = versionBuild(older);
  const tag = canonicalVersion(older).replace(/\+incompatible$/, '');
  if (tag === '') return `${major || 'v0'}.0.0-${segment}`;
  if (versionPrerelease(tag) !== '') return `${tag}.0.${segment}${build}`;
  const dot = tag.lastIndexOf('.');
  return `${tag.slice(0, dot + 1)}${(BigInt(tag.slice(dot + 1)) + 1n).toString()}-0.${segment}${build}`;
}
