import { describe, expect, it } from 'vitest';
import { checkPrefixPatterns, isValidGlob, matchGlob, matchPrefixPatterns } from './index';

describe('matchGlob (Go path.Match)', () => {
  // The cases of Go's own path.Match test table; `undefined` is ErrBadPattern.
  it.each([
    ['abc', 'abc', true],
    ['*', 'abc', true],
    ['*c', 'abc', true],
    ['a*', 'a', true],
    ['a*', 'abc', true],
    ['a*', 'ab/c', false],
    ['a*/b', 'abc/b', true],
    ['a*/b', 'a/c/b', false],
    ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
    ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
    ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
    ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
    ['a*b?c*x', 'abxbbxdbxebxczzx', true],
    ['a*b?c*x', 'abxbbxdbxebxczzy', false],
    ['ab[c]', 'abc', true],
    ['ab[b-d]', 'abc', true],
    ['ab[e-g]', 'abc', false],
    ['ab[^c]', 'abc', false],
    ['ab[^b-d]', 'abc', false],
    ['ab[^e-g]', 'abc', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'ab', false],
    ['a?b', 'a☺b', true],
    ['a[^a]b', 'a☺b', true],
    ['a???b', 'a☺b', false],
    ['a[^a][^a][^a]b', 'a☺b', false],
    ['[a-ζ]*', 'α', true],
    ['*[a-ζ]', 'A', false],
    ['a?b', 'a/b', false],
    ['a*b', 'a/b', false],
    ['[\\]a]', ']', true],
    ['[\\-]', '-', true],
    ['[x\\-]', 'x', true],
    ['[x\\-]', '-', true],
    ['[x\\-]', 'z', false],
    ['[\\-x]', 'x', true],
    ['[\\-x]', '-', true],
    ['[\\-x]', 'a', false],
    ['[]a]', ']', undefined],
    ['[-]', '-', undefined],
    ['[x-]', 'x', undefined],
    ['[x-]', '-', undefined],
    ['[x-]', 'z', undefined],
    ['[-x]', 'x', undefined],
    ['[-x]', '-', undefined],
    ['[-x]', 'a', undefined],
    ['\\', 'a', undefined],
    ['[a-b-c]', 'a', undefined],
    ['[', 'a', undefined],
    ['[^', 'a', undefined],
    ['[^bc', 'a', undefined],
    ['a[', 'a', undefined],
    ['a[', 'ab', undefined],
    ['a[', 'x', undefined],
    ['a/b[', 'x', undefined],
    ['*x', 'xxx', true],
  ] as const)('%j against %j → %j', (pattern, name, expected) => {
    expect(matchGlob(pattern, name)).toBe(expected);
  });

  it('tells valid globs from malformed ones', () => {
    expect(['example.com', '*.corp', 'a/[b-c]*', ''].map(isValidGlob)).toEqual([true, true, true, true]);
    expect(['[', 'a\\', '[z-]', 'x/[^'].map(isValidGlob)).toEqual([false, false, false, false]);
  });
});

describe('matchPrefixPatterns (x/mod module.MatchPrefixPatterns)', () => {
  // golang.org/x/mod/module's own test table.
  it.each([
    ['', 'rsc.io/quote', false],
    ['/', 'rsc.io/quote', false],
    ['*/quote', 'rsc.io/quote', true],
    ['*/quo', 'rsc.io/quote', false],
    ['*/quo??', 'rsc.io/quote', true],
    ['*/quo*', 'rsc.io/quote', true],
    ['*quo*', 'rsc.io/quote', false],
    ['rsc.io', 'rsc.io/quote', true],
    ['*.io', 'rsc.io/quote', true],
    ['rsc.io/', 'rsc.io/quote', true],
    ['rsc', 'rsc.io/quote', false],
    ['rsc*', 'rsc.io/quote', true],
    ['rsc.io', 'rsc.io/quote/v3', true],
    ['*/quote', 'rsc.io/quote/v3', true],
    ['*/quote/', 'rsc.io/quote/v3', true],
    ['*/quote/*', 'rsc.io/quote/v3', true],
    ['*/quote/*/', 'rsc.io/quote/v3', true],
    ['*/v3', 'rsc.io/quote/v3', false],
    ['*/*/v3', 'rsc.io/quote/v3', true],
    ['*/*/*', 'rsc.io/quote/v3', true],
    ['*/*/*/', 'rsc.io/quote/v3', true],
    ['*/*/*', 'rsc.io/quote', false],
    ['*/*/*/', 'rsc.io/quote', false],
    ['*/*/*,,', 'rsc.io/quote', false],
    ['*/*/*,,*/quote', 'rsc.io/quote', true],
    [',,*/quote', 'rsc.io/quote', true],
  ] as const)('%j against %j → %j', (globs, target, expected) => {
    expect(matchPrefixPatterns(globs, target)).toBe(expected);
  });

  it('matches whole path elements only, ignores malformed globs, and tries every glob', () => {
    expect(matchPrefixPatterns('example.com/a', 'example.com/ab')).toBe(false);
    expect(matchPrefixPatterns('example.com/a', 'example.com/a/b/c')).toBe(true);
    expect(matchPrefixPatterns('[,example.com', 'example.com/x')).toBe(true);
    expect(matchPrefixPatterns('[', 'example.com/x')).toBe(false);
    expect(matchPrefixPatterns('other.test,*.corp.example', 'git.corp.example/team/x')).toBe(true);
    // Go does not trim white space: ` example.com` names nothing.
    expect(matchPrefixPatterns('other.test, example.com', 'example.com/x')).toBe(false);
  });
});

describe('checkPrefixPatterns', () => {
  it('accepts GOPRIVATE-style lists and says what is wrong with the others', () => {
    expect(checkPrefixPatterns('example.com,*.corp.example/team,')).toBeUndefined();
    expect(checkPrefixPatterns('example.com, other.test')).toBe('pattern " other.test" contains white space');
    expect(checkPrefixPatterns('example.com/[a')).toBe('pattern "example.com/[a" is not a valid glob');
  });
});
