import { describe, expect, it } from 'vitest';
import { chooseLatest, listVersions } from './index';

describe('chooseLatest', () => {
  it.each([
    [
      'the highest release over prereleases and pseudo-versions',
      ['v1.0.0', 'v1.1.0-rc.1', 'v1.0.1-0.20200101000000-abcdefabcdef', 'v1.0.1'],
      'v1.0.1',
    ],
    ['numeric, not string, order', ['v1.9.0', 'v1.10.0', 'v1.2.0'], 'v1.10.0'],
    [
      'the highest prerelease when there is no release',
      ['v1.0.0-alpha', 'v1.0.0-beta.2', 'v1.0.0-beta.11'],
      'v1.0.0-beta.11',
    ],
    [
      'a prerelease over any pseudo-version',
      ['v0.1.0-rc.1', 'v0.1.0-rc.1.0.20250101000000-abcdefabcdef', 'v0.2.1-0.20250101000000-abcdefabcdef'],
      'v0.1.0-rc.1',
    ],
    [
      'the highest pseudo-version when nothing is tagged',
      [
        'v0.0.0-20200101000000-abcdefabcdef',
        'v0.0.0-20210101000000-bcdefabcdefa',
        'v0.0.0-20190101000000-cdefabcdefab',
      ],
      'v0.0.0-20210101000000-bcdefabcdefa',
    ],
    [
      'compatible releases over +incompatible ones',
      ['v1.5.0', 'v2.0.0+incompatible', 'v3.1.0+incompatible'],
      'v1.5.0',
    ],
    [
      'even a compatible prerelease over an +incompatible release',
      ['v1.6.0-rc.1', 'v2.0.0+incompatible'],
      'v1.6.0-rc.1',
    ],
    [
      '+incompatible when that is all there is',
      ['v2.0.0+incompatible', 'v3.0.0+incompatible'],
      'v3.0.0+incompatible',
    ],
    ['nothing usable', ['latest', 'v1', 'v1.2.3+meta', ''], undefined],
    ['an empty list', [], undefined],
  ])('picks %s', (_what, versions, expected) => {
    expect(chooseLatest(versions)).toBe(expected);
  });

  it('lets +incompatible releases compete when the compatible line has no go.mod', () => {
    const versions = ['v1.5.0', 'v2.0.0+incompatible', 'v3.1.0+incompatible'];
    expect(chooseLatest(versions, { latestCompatibleHasGoMod: false })).toBe('v3.1.0+incompatible');
    expect(chooseLatest(versions, { latestCompatibleHasGoMod: true })).toBe('v1.5.0');
  });
});

describe('listVersions', () => {
  it('serves tagged canonical versions once each, ascending, without pseudo-versions', () => {
    const stored = [
      'v1.10.0',
      'v1.2.0',
      'v1.2.0',
      'v1.0.0-rc.1',
      'v0.0.0-20200101000000-abcdefabcdef',
      'v1.2.1-0.20200101000000-abcdefabcdef',
      'v2.0.0+incompatible',
      'v1.3',
      'v1.4.0+meta',
      'junk',
      'v1.0.0',
    ];
    expect(listVersions(stored)).toEqual([
      'v1.0.0-rc.1',
      'v1.0.0',
      'v1.2.0',
      'v1.10.0',
      'v2.0.0+incompatible',
    ]);
    expect(listVersions([])).toEqual([]);
  });
});
