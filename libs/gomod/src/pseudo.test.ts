import { describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import {
  isPseudoVersion,
  isZeroPseudoVersion,
  pseudoVersion,
  pseudoVersionBase,
  pseudoVersionRev,
  pseudoVersionTime,
} from './index';

const failure = (fn: () => unknown): string => {
  try {
    fn();
    return 'no error';
  } catch (error) {
    return isModuleError(error, 'invalid-argument') ? 'invalid-argument' : 'other error';
  }
};

describe('pseudo-versions', () => {
  it.each([
    // [version, base, time, rev]
    ['v0.0.0-20191109021931-daa7c04131f5', '', '2019-11-09T02:19:31.000Z', 'daa7c04131f5'],
    ['v2.0.0-20191109021931-daa7c04131f5', '', '2019-11-09T02:19:31.000Z', 'daa7c04131f5'],
    ['v1.0.0-20191109021931-daa7c04131f5', '', '2019-11-09T02:19:31.000Z', 'daa7c04131f5'],
    ['v1.2.4-0.20191109021931-daa7c04131f5', 'v1.2.3', '2019-11-09T02:19:31.000Z', 'daa7c04131f5'],
    ['v1.2.10-0.20191109021931-daa7c04131f5', 'v1.2.9', '2019-11-09T02:19:31.000Z', 'daa7c04131f5'],
    ['v1.2.100-0.20191109021931-abc', 'v1.2.99', '2019-11-09T02:19:31.000Z', 'abc'],
    ['v1.2.3-pre.0.20191109021931-daa7c04131f5', 'v1.2.3-pre', '2019-11-09T02:19:31.000Z', 'daa7c04131f5'],
    ['v1.2.3-rc.1.0.20191109021931-daa7c04131f5', 'v1.2.3-rc.1', '2019-11-09T02:19:31.000Z', 'daa7c04131f5'],
    [
      'v2.0.1-0.20191109021931-daa7c04131f5+incompatible',
      'v2.0.0+incompatible',
      '2019-11-09T02:19:31.000Z',
      'daa7c04131f5',
    ],
    [
      'v2.0.0-beta.0.20191109021931-abcdef+incompatible',
      'v2.0.0-beta+incompatible',
      '2019-11-09T02:19:31.000Z',
      'abcdef',
    ],
    ['v0.0.0-00010101000000-000000000000', '', '0001-01-01T00:00:00.000Z', '000000000000'],
  ])('%s', (v, base, time, rev) => {
    expect(isPseudoVersion(v)).toBe(true);
    expect(pseudoVersionBase(v)).toBe(base);
    expect(pseudoVersionTime(v).toISOString()).toBe(time);
    expect(pseudoVersionRev(v)).toBe(rev);
  });

  it.each([
    'v1.2.3',
    'v1.2.3-pre',
    'v0.0.0-2019110902193-daa7c04131f5', // 13 digits
    'v0.0.0-20191109021931-', // no revision
    'v0.0.0-20191109021931-daa7c04131f5+meta.', // bad build
    'v1.2.3-0.20191109021931-abc.def', // revision with a dot
    'v1.2-0.20191109021931-abc',
    'v1.1.0-20191109021931-daa7c04131f5', // the untagged form needs minor and patch 0
    '0.0.0-20191109021931-daa7c04131f5',
  ])('%s is not a pseudo-version of any form', (v) => {
    expect(isPseudoVersion(v)).toBe(false);
    expect(failure(() => pseudoVersionTime(v))).toBe('invalid-argument');
    expect(failure(() => pseudoVersionRev(v))).toBe('invalid-argument');
    expect(failure(() => pseudoVersionBase(v))).toBe('invalid-argument');
  });

  it('rejects timestamps that are not real times, like Go time.Parse', () => {
    for (const v of ['v0.0.0-20191309021931-abc', 'v0.0.0-20200230000000-abc', 'v0.0.0-20191109246060-abc']) {
      expect(isPseudoVersion(v)).toBe(true);
      expect(failure(() => pseudoVersionTime(v))).toBe('invalid-argument');
    }
    expect(pseudoVersionTime('v0.0.0-20200229235959-abc').toISOString()).toBe('2020-02-29T23:59:59.000Z');
  });

  it('rejects bases that cannot exist', () => {
    // No tag to build on, yet +incompatible.
    expect(failure(() => pseudoVersionBase('v2.0.0-20191109021931-daa7c04131f5+incompatible'))).toBe(
      'invalid-argument',
    );
    // vX.Y.(Z+1) with Z+1 = 0.
    expect(failure(() => pseudoVersionBase('v1.0.0-0.20191109021931-daa7c04131f5'))).toBe('invalid-argument');
  });

  it('recognises the zero pseudo-version', () => {
    expect(isZeroPseudoVersion('v0.0.0-00010101000000-000000000000')).toBe(true);
    expect(isZeroPseudoVersion('v2.0.0-00010101000000-000000000000')).toBe(true);
    expect(isZeroPseudoVersion('v0.0.0-20191109021931-daa7c04131f5')).toBe(false);
  });

  it('builds pseudo-versions that parse back to their parts', () => {
    const t = new Date('2019-11-09T02:19:31Z');
    const cases: [string, string, string][] = [
      ['v0', '', 'v0.0.0-20191109021931-daa7c04131f5'],
      ['', '', 'v0.0.0-20191109021931-daa7c04131f5'],
      ['v2', '', 'v2.0.0-20191109021931-daa7c04131f5'],
      ['v1', 'v1.2.3', 'v1.2.4-0.20191109021931-daa7c04131f5'],
      ['v1', 'v1.2.9', 'v1.2.10-0.20191109021931-daa7c04131f5'],
      ['v1', 'v1.2.3-pre', 'v1.2.3-pre.0.20191109021931-daa7c04131f5'],
      ['v2', 'v2.0.0+incompatible', 'v2.0.1-0.20191109021931-daa7c04131f5+incompatible'],
    ];
    for (const [major, older, expected] of cases) {
      const v = pseudoVersion(major, older, t, 'daa7c04131f5');
      expect(v).toBe(expected);
      expect(pseudoVersionBase(v)).toBe(older);
      expect(pseudoVersionTime(v)).toEqual(t);
    }
  });
});
