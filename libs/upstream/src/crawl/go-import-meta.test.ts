import { describe, expect, it } from 'vitest';
import { matchGoImport, parseGoImportMeta } from './go-import-meta';

describe('parseGoImportMeta', () => {
  it('reads go-import tags of the head in any attribute order, quoting and entity spelling', () => {
    const page = `<!DOCTYPE html><html><head>
      <meta charset="utf-8">
      <meta name="go-import" content="vanity.example/a git https://git.example/a">
      <META CONTENT='vanity.example/b   git   https://git.example/b?x=1&amp;y=2' NAME='go-import'/>
      <meta name=go-import content="vanity.example/c mod https://proxy.example">
      <meta name="go-import" content="vanity.example/d git https://git.example/mono d">
      <meta name="go-import" content="too few">
      <meta name="go-source" content="vanity.example/a _ _ _">
    </head><body><meta name="go-import" content="vanity.example/e git https://git.example/e"></body></html>`;
    expect(parseGoImportMeta(page)).toEqual([
      { prefix: 'vanity.example/a', vcs: 'git', repoRoot: 'https://git.example/a', subdir: '' },
      { prefix: 'vanity.example/b', vcs: 'git', repoRoot: 'https://git.example/b?x=1&y=2', subdir: '' },
      { prefix: 'vanity.example/c', vcs: 'mod', repoRoot: 'https://proxy.example', subdir: '' },
      { prefix: 'vanity.example/d', vcs: 'git', repoRoot: 'https://git.example/mono', subdir: 'd' },
    ]);
  });
});

describe('matchGoImport', () => {
  const entry = (prefix: string, vcs = 'git') => ({
    prefix,
    vcs,
    repoRoot: `https://git.example/${prefix}`,
    subdir: '',
  });

  it('picks the entry whose prefix holds the path, element-wise', () => {
    const entries = [entry('vanity.example/ab'), entry('vanity.example/a')];
    expect(matchGoImport(entries, 'vanity.example/a/v2')?.prefix).toBe('vanity.example/a');
    expect(matchGoImport(entries, 'vanity.example/abc')).toBeUndefined();
  });

  it('refuses two matches, unless a mod entry is among them', () => {
    expect(() => matchGoImport([entry('v.example/a'), entry('v.example')], 'v.example/a/b')).toThrow(
      /multiple/,
    );
    expect(matchGoImport([entry('v.example/a'), entry('v.example', 'mod')], 'v.example/a/b')?.vcs).toBe(
      'mod',
    );
  });
});
