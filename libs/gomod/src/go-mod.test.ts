import { describe, expect, it } from 'vitest';
import { parseGoModModulePath } from './index';

describe('parseGoModModulePath', () => {
  it.each([
    ['module example.com/m\n', 'example.com/m'],
    ['module example.com/m', 'example.com/m'],
    ['// module other.com/x\nmodule example.com/m // the module\n\ngo 1.22\n', 'example.com/m'],
    ['go 1.21\nrequire x.y/z v1.0.0\nmodule example.com/m\n', 'example.com/m'],
    ['module "example.com/m"\n', 'example.com/m'],
    ['module "example.com/m" // quoted\n', 'example.com/m'],
    ['module "\\x65xample.com/m"\n', 'example.com/m'],
    ['module (\n\texample.com/m\n)\n', 'example.com/m'],
    ['module (\n\t// the path\n\t"example.com/m"\n)\n', 'example.com/m'],
    ['module(\nexample.com/m\n)\n', 'example.com/m'],
    ['\r\nmodule example.com/m\r\n', 'example.com/m'],
    ['module example.com/m//comment\n', 'example.com/m'],
    ['require (\n\tmodule v1.0.0\n)\nmodule example.com/m\n', 'example.com/m'],
    [Buffer.from('module example.com/buf\n'), 'example.com/buf'],
  ])('%j → %s', (goMod, expected) => {
    expect(parseGoModModulePath(goMod)).toBe(expected);
  });

  it.each([
    ['', 'empty'],
    ['go 1.22\n', 'no module directive'],
    ['modules example.com/m\n', 'another word'],
    ['module\n', 'no path'],
    ['module example.com/m extra\n', 'two arguments'],
    ['module `example.com/m`\n', 'back-quoted (the go.mod syntax reserves it)'],
    ["module 'example.com/m'\n", 'single-quoted'],
    ['module "example.com/m\n', 'unterminated string'],
    ['module "example.com/m"x\n', 'junk after the string'],
    ['module (example.com/m)\n', 'one-line block'],
    ['module (\n)\n', 'empty block'],
    ['module (\nexample.com/m\n', 'unterminated block'],
    ['module (\nexample.com/m\nother.com/x\n)\n', 'two paths in a block'],
    ['module example.com/m\nmodule other.com/x\n', 'repeated directive'],
    ['module ""\n', 'empty path'],
  ])('%j → undefined (%s)', (goMod) => {
    expect(parseGoModModulePath(goMod)).toBeUndefined();
  });
});
