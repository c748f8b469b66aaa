import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { hash1, hashGoMod, synthesizedGoMod } from './index';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('hashGoMod', () => {
  it.each([
    // Lines from real go.sum files; these versions have no go.mod, so the go command synthesized one.
    ['golang.org/x/text', 'h1:NqM8EUOU14njkJ3fqMW+pc6Ldnwhi/IjpwHt7yyuwOQ='],
    ['github.com/pmezard/go-difflib', 'h1:iKH77koFhYxTK1pcRnkKkqfTogsbg7gZNVY4sRDYZ/4='],
  ])('reproduces the go.sum /go.mod line of %s', (module, h1) => {
    expect(hashGoMod(synthesizedGoMod(module))).toBe(h1);
  });

  it('changes with a single byte of the file', () => {
    expect(hashGoMod(Buffer.from('module a.b/c\n'))).not.toBe(hashGoMod(Buffer.from('module a.b/c \n')));
  });
});

describe('hash1', () => {
  const files = [
    { name: 'm@v1.0.0/b.go', sha256: sha('b') },
    { name: 'm@v1.0.0/a.go', sha256: sha('a') },
    { name: 'm@v1.0.0/\u{1d400}.txt', sha256: sha('math') },
    { name: 'm@v1.0.0/\uff26.txt', sha256: sha('full') },
  ];

  it('does not depend on the order files are given in', () => {
    expect(hash1(files)).toBe(hash1([...files].reverse()));
    expect(hash1(files)).toMatch(/^h1:[A-Za-z0-9+/]{43}=$/);
  });

  it('depends on names and contents', () => {
    const renamed = files.map((f, i) => (i === 0 ? { ...f, name: 'm@v1.0.0/c.go' } : f));
    const edited = files.map((f, i) => (i === 0 ? { ...f, sha256: sha('B') } : f));
    expect(hash1(renamed)).not.toBe(hash1(files));
    expect(hash1(edited)).not.toBe(hash1(files));
    expect(hash1([])).not.toBe(hash1(files));
  });

  it('refuses names with newlines and malformed digests', () => {
    for (const bad of [
      { name: 'a\nb', sha256: sha('x') },
      { name: 'a', sha256: 'XYZ' },
      { name: 'a', sha256: sha('x').toUpperCase() },
    ]) {
      try {
        hash1([bad]);
        expect.unreachable();
      } catch (error) {
        expect(isModuleError(error, 'invalid-argument')).toBe(true);
      }
    }
  });
});
