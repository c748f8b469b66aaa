import { describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { MAX_ELEMENT_LENGTH, MAX_PATH_LENGTH, parseGoproxyPath } from './goproxy-path';

describe('parseGoproxyPath', () => {
  it('parses every GOPROXY endpoint and unescapes module paths and versions', () => {
    expect(parseGoproxyPath('/example.test/hello.git/@v/list')).toEqual({
      kind: 'list',
      module: 'example.test/hello.git',
    });
    expect(parseGoproxyPath('/github.com/!azure/go-sdk/@latest')).toEqual({
      kind: 'latest',
      module: 'github.com/Azure/go-sdk',
    });
    expect(parseGoproxyPath('/a.b/c/v2/@v/v2.0.0.info')).toEqual({
      kind: 'info',
      module: 'a.b/c/v2',
      version: 'v2.0.0',
    });
    expect(parseGoproxyPath('/a.b/c/@v/v3.0.0+incompatible.mod')).toEqual({
      kind: 'mod',
      module: 'a.b/c',
      version: 'v3.0.0+incompatible',
    });
    expect(parseGoproxyPath('/a.b/c/@v/v1.0.0-!r!c1.zip')).toEqual({
      kind: 'zip',
      module: 'a.b/c',
      version: 'v1.0.0-RC1',
    });
    // The go command percent-encodes some characters of escaped paths.
    expect(parseGoproxyPath('/github.com/%21azure/x/@v/v1.0.0%2Bincompatible.info')).toEqual({
      kind: 'info',
      module: 'github.com/Azure/x',
      version: 'v1.0.0+incompatible',
    });
  });

  it('leaves paths outside the protocol to the router', () => {
    expect(parseGoproxyPath('/')).toBeUndefined();
    expect(parseGoproxyPath('/a.b/c')).toBeUndefined();
    expect(parseGoproxyPath('/a.b/c/@v/v1.0.0.tar')).toBeUndefined();
  });

  it.each([
    ['encoded slash', '/a.b%2fc/@v/list'],
    ['encoded backslash', '/a.b%5Cc/@v/list'],
    ['NUL', '/a.b/c%00/@v/list'],
    ['dot-dot element', '/a.b/../../etc/@v/list'],
    ['encoded dot-dot', '/a.b/%2e%2e/%2e%2e/etc/@v/list'],
    ['uppercase in escaped path', '/github.com/Azure/x/@v/list'],
    ['bang before a non-letter', '/github.com/!1zure/x/@v/list'],
    ['bang in version before a non-letter', '/a.b/c/@v/v1.0.0-!1.info'],
    ['uppercase in escaped version', '/a.b/c/@v/v1.0.0-RC1.info'],
    ['malformed percent-encoding', '/a.b/c%zz/@v/list'],
    ['no dot in first element', '/localhost/c/@v/list'],
    ['too long', `/a.b/${'x'.repeat(MAX_PATH_LENGTH)}/@v/list`],
    ['a module path element no file system holds', `/a.b/${'x'.repeat(MAX_ELEMENT_LENGTH + 1)}/@v/list`],
    ['a version no file system holds', `/a.b/c/@v/v1.0.0-${'x'.repeat(MAX_ELEMENT_LENGTH)}.info`],
  ])('rejects %s with invalid-argument', (_name, path) => {
    let thrown: unknown;
    try {
      parseGoproxyPath(path);
    } catch (error) {
      thrown = error;
    }
    expect(isModuleError(thrown, 'invalid-argument')).toBe(true);
  });
});
