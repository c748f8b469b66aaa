import { describe, expect, it } from 'vitest';
import {
  canonicalVersion,
  compareSemver,
  compareVersions,
  isCanonicalVersion,
  isIncompatible,
  isValidSemver,
  maxVersion,
  sortVersions,
  versionBuild,
  versionMajor,
  versionMajorMinor,
  versionPrerelease,
} from './index';

describe('semver parsing', () => {
  it.each([
    // [version, valid, canonical, major, prerelease, build]
    ['v1', true, 'v1.0.0', 'v1', '', ''],
    ['v1.2', true, 'v1.2.0', 'v1', '', ''],
    ['v1.2.3', true, 'v1.2.3', 'v1', '', ''],
    ['v0.0.0', true, 'v0.0.0', 'v0', '', ''],
    ['v1.2.3-pre', true, 'v1.2.3-pre', 'v1', '-pre', ''],
    ['v1.2.3-pre.1+meta', true, 'v1.2.3-pre.1', 'v1', '-pre.1', '+meta'],
    ['v1.2.3+meta', true, 'v1.2.3', 'v1', '', '+meta'],
    ['v1.2.3+01', true, 'v1.2.3', 'v1', '', '+01'],
    ['v2.0.0+incompatible', true, 'v2.0.0+incompatible', 'v2', '', '+incompatible'],
    ['v1.2.3-0a', true, 'v1.2.3-0a', 'v1', '-0a', ''],
    ['v1.2.3--', true, 'v1.2.3--', 'v1', '--', ''],
    ['v99999999999999999999.0.0', true, 'v99999999999999999999.0.0', 'v99999999999999999999', '', ''],
    ['1.2.3', false, '', '', '', ''],
    ['V1.2.3', false, '', '', '', ''],
    ['v', false, '', '', '', ''],
    ['v01.2.3', false, '', '', '', ''],
    ['v1.02.3', false, '', '', '', ''],
    ['v1.2.03', false, '', '', '', ''],
    ['v1.2.3.4', false, '', '', '', ''],
    ['v1.2-pre', false, '', '', '', ''],
    ['v1+meta', false, '', '', '', ''],
    ['v1.2.3-', false, '', '', '', ''],
    ['v1.2.3+', false, '', '', '', ''],
    ['v1.2.3-01', false, '', '', '', ''],
    ['v1.2.3-a..b', false, '', '', '', ''],
    ['v1.2.3-a_b', false, '', '', '', ''],
    ['v1.2.3 ', false, '', '', '', ''],
    ['', false, '', '', '', ''],
  ])('%j', (v, valid, canonical, major, prerelease, build) => {
    expect(isValidSemver(v)).toBe(valid);
    expect(canonicalVersion(v)).toBe(canonical);
    expect(versionMajor(v)).toBe(major);
    expect(versionPrerelease(v)).toBe(prerelease);
    expect(versionBuild(v)).toBe(build);
  });

  it('reports major.minor', () => {
    expect(versionMajorMinor('v1.2.3-pre')).toBe('v1.2');
    expect(versionMajorMinor('v3')).toBe('v3.0');
    expect(versionMajorMinor('x')).toBe('');
  });

  it.each([
    ['v1.2.3', true],
    ['v1.2.3-rc.1', true],
    ['v2.0.0+incompatible', true],
    ['v0.0.0-20191109021931-daa7c04131f5', true],
    ['v1', false],
    ['v1.2', false],
    ['v1.2.3+meta', false],
    ['v1.2.3+incompatible.x', false],
    ['latest', false],
    ['', false],
  ])('isCanonicalVersion(%j) = %s', (v, expected) => {
    expect(isCanonicalVersion(v)).toBe(expected);
  });

  it('recognises +incompatible only as the whole build suffix', () => {
    expect(isIncompatible('v2.0.0+incompatible')).toBe(true);
    expect(isIncompatible('v2.0.0-20200101000000-abcdefabcdef+incompatible')).toBe(true);
    expect(isIncompatible('v2.0.0')).toBe(false);
    expect(isIncompatible('v2.0.0+incompatible.1')).toBe(false);
    expect(isIncompatible('x+incompatible')).toBe(false);
  });
});

describe('version order', () => {
  // Each row strictly below the next, as in the semver.org precedence example and Go's tests.
  const ascending = [
    'bad',
    'v0.0.0-20191109021931-daa7c04131f5',
    'v0.0.0',
    'v0.0.1',
    'v0.1.0',
    'v1.0.0-1',
    'v1.0.0-9',
    'v1.0.0-10',
    'v1.0.0-A',
    'v1.0.0-a-b',
    'v1.0.0-alpha',
    'v1.0.0-alpha.1',
    'v1.0.0-alpha.beta',
    'v1.0.0-beta',
    'v1.0.0-beta.2',
    'v1.0.0-beta.11',
    'v1.0.0-rc.1',
    'v1.0.0',
    'v1.2.3-pre',
    'v1.2.3-pre.0.20200101000000-abcdefabcdef',
    'v1.2.3-pre.1',
    'v1.2.3',
    'v1.2.4-0.20200101000000-abcdefabcdef',
    'v1.2.4',
    'v1.9.0',
    'v1.10.0',
    'v2.0.0+incompatible',
    'v10.0.0',
  ];

  it('orders prereleases, releases and pseudo-versions as the go command does', () => {
    for (let i = 0; i < ascending.length; i++) {
      for (let j = 0; j < ascending.length; j++) {
        const a = ascending[i] ?? '';
        const b = ascending[j] ?? '';
        expect([a, b, compareVersions(a, b)]).toEqual([a, b, Math.sign(i - j)]);
      }
    }
  });

  it('sorts a shuffled list back into order without touching the input', () => {
    const shuffled = [...ascending].reverse();
    const copy = [...shuffled];
    expect(sortVersions(shuffled)).toEqual(ascending);
    expect(shuffled).toEqual(copy);
    expect(maxVersion(shuffled)).toBe('v10.0.0');
    expect(maxVersion([])).toBeUndefined();
  });

  it('ignores build metadata for precedence but keeps a total order', () => {
    expect(compareSemver('v1.0.0+a', 'v1.0.0+b')).toBe(0);
    expect(compareSemver('v1', 'v1.0.0')).toBe(0);
    expect(compareSemver('bad', 'worse')).toBe(0);
    expect(compareVersions('v1.0.0+a', 'v1.0.0+b')).toBe(-1);
    expect(compareVersions('v1', 'v1.0.0')).toBe(-1);
    expect(compareVersions('v1.0.0', 'v1')).toBe(1);
    expect(compareVersions('v1.0.0', 'v1.0.0')).toBe(0);
    expect(sortVersions(['v1.0.0', 'v1', 'v1.0', 'zz', 'aa'])).toEqual(['aa', 'zz', 'v1', 'v1.0', 'v1.0.0']);
  });

  it('compares huge numeric components by value, not as floats', () => {
    expect(compareVersions('v99999999999999999999.0.0', 'v99999999999999999998.0.0')).toBe(1);
    expect(compareVersions('v1.0.0-99999999999999999999', 'v1.0.0-100000000000000000000')).toBe(-1);
  });
});
