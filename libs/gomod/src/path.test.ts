import { describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import {
  checkFilePath,
  checkImportPath,
  checkModulePath,
  checkModuleVersion,
  checkPathMajor,
  isValidModulePath,
  matchPathMajor,
  splitPathVersion,
} from './index';

const accepts = (fn: () => void): boolean => {
  try {
    fn();
    return true;
  } catch (error) {
    if (isModuleError(error, 'invalid-argument')) return false;
    throw error;
  }
};

describe('module, import and file paths', () => {
  // [path, module, import, file]
  it.each([
    ['example.com/m', true, true, true],
    ['example.com', true, true, true],
    ['github.com/Azure/x', true, true, true],
    ['a_b.c/d', false, true, true], // underscore is not allowed in the host
    ['Example.com/m', false, true, true], // the host is lower case only
    ['example', false, true, true], // no dot in the first element
    ['-a.b/c', false, false, true],
    ['a.b/-c', true, true, true],
    ['a-.b/c', true, true, true],
    ['.a.b/c', false, true, true],
    ['a.b/.c', false, true, true], // leading dot: not for module paths
    ['a.b/c.', false, false, false],
    ['a.b.', false, false, false],
    ['a.b//c', false, false, false],
    ['a.b/c/', false, false, false],
    ['/a.b/c', false, false, false],
    ['a.b/./c', false, false, false],
    ['a.b/../c', false, false, false],
    ['a.b/.../c', false, false, false],
    ['a.b/c+d', false, true, true],
    ['a.b/c d', false, false, true],
    ['a.b/c!d', false, false, true],
    ['a.b/c@v', false, false, true],
    ['a.b/c#', false, false, true],
    ['a.b/c:d', false, false, false],
    ['a.b/c\\d', false, false, false],
    ['a.b/c"d', false, false, false],
    ['a.b/é', false, false, true], // letters are fine in file names
    ['x.y/☺.go', false, false, false], // symbols are not
    ['x.y/\u0301', false, false, false], // a combining mark is no letter
    ['a.b/con', false, false, false],
    ['a.b/CON.txt', false, false, false],
    ['a.b/aux.go', false, false, false],
    ['a.b/lpt9', false, false, false],
    ['a.b/com1x', true, true, true],
    ['a.b/c~1', false, false, true], // Windows short name
    ['a.b/c~1.d', false, false, true],
    ['a.b/~9999', false, false, true],
    ['a.b/c~', true, true, true],
    ['a.b/c~1x', true, true, true],
    ['a.b/c/v1', false, true, true],
    ['a.b/c/v0', false, true, true],
    ['a.b/c/v02', false, true, true],
    ['a.b/c/v2.1', false, true, true],
    ['a.b/c/v2', true, true, true],
    ['a.b/v2', true, true, true],
    ['gopkg.in/yaml.v2', true, true, true],
    ['gopkg.in/yaml', false, true, true],
    ['gopkg.in/yaml.v00', false, true, true],
    ['gopkg.in/v2', false, true, true],
    ['', false, false, false],
    ['a.b/\ud800', false, false, false], // lone surrogate: not valid UTF-8
  ])('%j', (path, module, importPath, file) => {
    expect(accepts(() => checkModulePath(path))).toBe(module);
    expect(isValidModulePath(path)).toBe(module);
    expect(accepts(() => checkImportPath(path))).toBe(importPath);
    expect(accepts(() => checkFilePath(path))).toBe(file);
  });

  it('names the module and the problem in the error', () => {
    try {
      checkModulePath('Example.com/m');
      expect.unreachable();
    } catch (error) {
      expect(isModuleError(error, 'invalid-argument')).toBe(true);
      expect(error).toMatchObject({ module: 'Example.com/m', op: 'gomod.checkModulePath' });
      expect((error as Error).message).toContain('invalid char "E" in first path element');
    }
  });
});

describe('splitPathVersion', () => {
  it.each([
    ['example.com/m', 'example.com/m', '', true],
    ['example.com/m/v2', 'example.com/m', '/v2', true],
    ['example.com/m/v10', 'example.com/m', '/v10', true],
    ['example.com/m/v1', 'example.com/m/v1', '', false],
    ['example.com/m/v0', 'example.com/m/v0', '', false],
    ['example.com/m/v02', 'example.com/m/v02', '', false],
    ['example.com/m/v2.0', 'example.com/m/v2.0', '', false],
    ['example.com/m/vv2', 'example.com/m/vv2', '', true],
    ['example.com/m/2', 'example.com/m/2', '', true],
    ['example.com/m/v2/x', 'example.com/m/v2/x', '', true],
    ['gopkg.in/yaml.v2', 'gopkg.in/yaml', '.v2', true],
    ['gopkg.in/yaml.v0', 'gopkg.in/yaml', '.v0', true],
    ['gopkg.in/yaml.v00', 'gopkg.in/yaml.v00', '', false],
    ['gopkg.in/yaml.v2-unstable', 'gopkg.in/yaml', '.v2-unstable', true],
    ['gopkg.in/user/pkg.v3', 'gopkg.in/user/pkg', '.v3', true],
    ['gopkg.in/yaml', 'gopkg.in/yaml', '', false],
  ])('%s → %j + %j (%s)', (path, prefix, pathMajor, ok) => {
    expect(splitPathVersion(path)).toEqual({ prefix, pathMajor, ok });
  });
});

describe('checkPathMajor', () => {
  it.each([
    ['v1.2.3', '', true],
    ['v0.1.0', '', true],
    ['v2.0.0', '', false],
    ['v2.0.0+incompatible', '', true],
    ['v2.0.0', '/v2', true],
    ['v3.0.0', '/v2', false],
    ['v1.0.0', '/v2', false],
    ['v2.0.0+incompatible', '/v2', true],
    ['v2.1.0', '.v2', true],
    ['v2.1.0', '.v2-unstable', true],
    ['v1.0.0', '.v2', false],
    ['v0.0.0-20161208181325-20d25e280405', '.v1', true], // old go commands wrote these for gopkg.in .v1
    ['v0.1.0', '.v1', false],
    ['v0.1.0', '.v0', true],
  ])('%s with %j → %s', (v, pathMajor, ok) => {
    expect(matchPathMajor(v, pathMajor)).toBe(ok);
    expect(accepts(() => checkPathMajor(v, pathMajor))).toBe(ok);
  });

  it.each([
    ['example.com/m', 'v1.0.0', true],
    ['example.com/m', 'v2.0.0+incompatible', true],
    ['example.com/m', 'v2.0.0', false],
    ['example.com/m/v2', 'v2.0.0', true],
    ['example.com/m/v2', 'v1.0.0', false],
    ['example.com/m', 'v1', true],
    ['example.com/m', 'master', false],
    ['Example.com/m', 'v1.0.0', false],
  ])('checkModuleVersion(%s, %s) → %s', (module, version, ok) => {
    expect(accepts(() => checkModuleVersion(module, version))).toBe(ok);
  });
});
