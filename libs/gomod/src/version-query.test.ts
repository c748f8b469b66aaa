import { describe, expect, it } from 'vitest';
import { isValidVersionQuery } from './index';

describe('isValidVersionQuery', () => {
  it.each([
    'latest',
    'master',
    'main',
    'daa7c04131f5',
    'v1.2',
    'v1.2.3-rc.1+meta',
    'release/1.x',
    'feature_x~2',
    'Master',
    'a',
  ])('accepts %j', (q) => {
    expect(isValidVersionQuery(q)).toBe(true);
  });

  it.each([
    '',
    '-rf',
    '../etc/passwd',
    'a..b',
    'a b',
    'a;b',
    'a:b',
    'a@b',
    '/abs',
    'trailing/',
    'a//b',
    'é',
    'x'.repeat(257),
  ])('rejects %j', (q) => {
    expect(isValidVersionQuery(q)).toBe(false);
  });

  it('accepts the longest allowed query', () => {
    expect(isValidVersionQuery('x'.repeat(256))).toBe(true);
  });
});
