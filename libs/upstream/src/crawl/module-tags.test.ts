import { describe, expect, it } from 'vitest';
import { hasPathPrefix, versionsFromTags } from './module-tags';

const sorted = (listing: { versions: string[]; unconfirmed: string[] }) => ({
  versions: [...listing.versions].sort(),
  unconfirmed: [...listing.unconfirmed].sort(),
});

describe('versionsFromTags', () => {
  const tags = [
    'v1.0.0',
    'v1.1.0',
    'v1.2.0-pre',
    'v1.2', // not canonical
    'v1.3.0+meta', // build metadata: not canonical to the go command
    'v1.4.0+incompatible', // likewise
    'v0.0.0-20240101000000-abcdefabcdef', // a pseudo-version tag
    'release-1', // not a version
    'v2.0.0',
    'v2.1.0',
    'v3.0.0',
    'sub/v1.0.0',
    'sub/v2.0.0',
    'sub/deeper/v0.1.0',
  ];

  it('lists the canonical v0/v1 tags of a root module and keeps v2+ as +incompatible candidates', () => {
    expect(sorted(versionsFromTags('github.com/o/r', 'github.com/o/r', tags))).toEqual({
      versions: ['v1.0.0', 'v1.1.0', 'v1.2.0-pre'],
      unconfirmed: ['v2.0.0+incompatible', 'v2.1.0+incompatible', 'v3.0.0+incompatible'],
    });
  });

  it('lists only the vN tags of a /vN module, at the root or in a vN/ subdirectory alike', () => {
    expect(sorted(versionsFromTags('github.com/o/r/v2', 'github.com/o/r', tags))).toEqual({
      versions: ['v2.0.0', 'v2.1.0'],
      unconfirmed: [],
    });
    // A go-import root that is the whole module path (nanomsg.org/go/mangos/v2).
    expect(sorted(versionsFromTags('vanity.example/m/v3', 'vanity.example/m/v3', tags))).toEqual({
      versions: ['v3.0.0'],
      unconfirmed: [],
    });
  });

  it('lists the <dir>/ tags of a module in a subdirectory, its major suffix included', () => {
    expect(sorted(versionsFromTags('github.com/o/r/sub', 'github.com/o/r', tags))).toEqual({
      versions: ['v1.0.0'],
      unconfirmed: [],
    });
    expect(sorted(versionsFromTags('github.com/o/r/sub/v2', 'github.com/o/r', tags))).toEqual({
      versions: ['v2.0.0'],
      unconfirmed: [],
    });
    expect(versionsFromTags('github.com/o/r/sub/deeper', 'github.com/o/r', tags).versions).toEqual([
      'v0.1.0',
    ]);
    // A go-import subdirectory goes in front of the module's own directory.
    expect(versionsFromTags('vanity.example/deeper', 'vanity.example', tags, 'sub').versions).toEqual([
      'v0.1.0',
    ]);
  });

  it('follows gopkg.in major suffixes, and lists nothing for -unstable', () => {
    expect(sorted(versionsFromTags('gopkg.in/yaml.v2', 'gopkg.in/yaml.v2', tags))).toEqual({
      versions: ['v2.0.0', 'v2.1.0'],
      unconfirmed: [],
    });
    expect(versionsFromTags('gopkg.in/yaml.v2-unstable', 'gopkg.in/yaml.v2-unstable', tags)).toEqual({
      versions: [],
      unconfirmed: [],
    });
  });

  it('refuses a root that cannot hold the module', () => {
    expect(() => versionsFromTags('github.com/o/r', 'github.com/o/other', tags)).toThrow(/cannot contain/);
    expect(() => versionsFromTags('github.com/o/rest', 'github.com/o/r', tags)).toThrow(/cannot contain/);
  });

  it('compares paths element-wise', () => {
    expect(hasPathPrefix('a/b/c', 'a/b')).toBe(true);
    expect(hasPathPrefix('a/b', 'a/b')).toBe(true);
    expect(hasPathPrefix('a/bc', 'a/b')).toBe(false);
  });
});
