import { describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { formatGoproxyList, parseGoproxyList } from './parse-goproxy';

function parseError(value: string): string {
  try {
    parseGoproxyList(value);
  } catch (error) {
    expect(isModuleError(error, 'invalid-argument')).toBe(true);
    return (error as Error).message;
  }
  throw new Error(`"${value}" was accepted`);
}

describe('parseGoproxyList', () => {
  it('records the separator after each entry', () => {
    expect(parseGoproxyList('https://a.example,https://b.example|http://c.example:8080/go,direct')).toEqual([
      { kind: 'proxy', url: 'https://a.example', fallThroughOnError: false },
      { kind: 'proxy', url: 'https://b.example', fallThroughOnError: true },
      { kind: 'proxy', url: 'http://c.example:8080/go', fallThroughOnError: false },
      { kind: 'direct', fallThroughOnError: false },
    ]);
  });

  it('treats the last entry as followed by a comma', () => {
    expect(parseGoproxyList('https://a.example|')).toEqual([
      { kind: 'proxy', url: 'https://a.example', fallThroughOnError: true },
    ]);
    expect(parseGoproxyList('https://a.example')).toEqual([
      { kind: 'proxy', url: 'https://a.example', fallThroughOnError: false },
    ]);
  });

  it('skips blank entries and surrounding spaces', () => {
    expect(parseGoproxyList(' , https://a.example ,, | https://b.example ,')).toEqual([
      { kind: 'proxy', url: 'https://a.example', fallThroughOnError: false },
      { kind: 'proxy', url: 'https://b.example', fallThroughOnError: false },
    ]);
  });

  it('ends the list at direct or off, ignoring what follows', () => {
    expect(parseGoproxyList('https://a.example,off,https://b.example')).toEqual([
      { kind: 'proxy', url: 'https://a.example', fallThroughOnError: false },
      { kind: 'off', fallThroughOnError: false },
    ]);
    expect(parseGoproxyList('direct|https://b.example,not a url at all')).toEqual([
      { kind: 'direct', fallThroughOnError: false },
    ]);
    expect(parseGoproxyList('off')).toEqual([{ kind: 'off', fallThroughOnError: false }]);
  });

  it('adds https:// to a bare host, as the go command does', () => {
    expect(parseGoproxyList('proxy.golang.org,localhost:3000/go')).toEqual([
      { kind: 'proxy', url: 'https://proxy.golang.org', fallThroughOnError: false },
      { kind: 'proxy', url: 'https://localhost:3000/go', fallThroughOnError: false },
    ]);
  });

  it('rejects invalid entries with a message naming the value', () => {
    expect(parseError('https://a.example,foo')).toMatch(
      /invalid GOPROXY "https:\/\/a\.example,foo".*"foo".*missing its scheme/,
    );
    expect(parseError('/srv/goproxy')).toMatch(/"\/srv\/goproxy" is missing its scheme/);
    expect(parseError('ftp://a.example')).toMatch(/must use http:\/\/ or https:\/\//);
    expect(parseError('file:///srv/goproxy')).toMatch(/file:\/\/ proxy .* not supported/);
    expect(parseError('https://exa mple.com')).toMatch(/is not a valid URL/);
    expect(parseError('Direct')).toMatch(/"Direct" is missing its scheme/);
  });

  it('rejects a value without entries', () => {
    expect(parseError('')).toMatch(/empty/);
    expect(parseError(' , | ')).toMatch(/no entries/);
  });

  it('repeats neither the user name nor the password in its error message', () => {
    const message = parseError('https://bob:hunter2@a.example,gopher://bob:hunter2@b.example');
    expect(message).not.toContain('hunter2');
    expect(message).not.toContain('bob');
    expect(message).toContain('https://xxxxx@a.example');
    expect(parseError('http://bob:hunter2@bad host')).toBe(
      'invalid GOPROXY "http://xxxxx@bad host": proxy URL "http://xxxxx@bad host" is not a valid URL',
    );
  });
});

describe('formatGoproxyList', () => {
  it('writes the list back with its separators and userinfo redacted', () => {
    const entries = parseGoproxyList('https://u:p@a.example/,https://b.example|https://u@c.example|direct');
    expect(formatGoproxyList(entries)).toBe(
      'https://xxxxx@a.example,https://b.example|https://xxxxx@c.example|direct',
    );
  });
});
