import { describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { escapePath, escapeVersion, unescapePath, unescapeVersion } from './index';

function invalid(fn: () => unknown): { op: string; module?: string; version?: string } {
  try {
    fn();
  } catch (error) {
    if (isModuleError(error, 'invalid-argument'))
      return { op: error.op, module: error.module, version: error.version };
    throw error;
  }
  throw new Error('expected an invalid-argument error');
}

describe('escapePath / unescapePath', () => {
  it.each([
    ['github.com/Azure/azure-sdk-for-go', 'github.com/!azure/azure-sdk-for-go'],
    ['github.com/BurntSushi/toml', 'github.com/!burnt!sushi/toml'],
    ['github.com/sirupsen/logrus', 'github.com/sirupsen/logrus'],
    ['example.com/ABC/v2', 'example.com/!a!b!c/v2'],
    ['gopkg.in/yaml.v3', 'gopkg.in/yaml.v3'],
    ['example.com/a_b~c-d.e', 'example.com/a_b~c-d.e'],
  ])('%s ⇄ %s', (path, escaped) => {
    expect(escapePath(path)).toBe(escaped);
    expect(unescapePath(escaped)).toBe(path);
  });

  it.each([
    ['Github.com/x', 'upper case in the host'],
    ['example', 'no dot in the first element'],
    ['example.com/x/', 'trailing slash'],
    ['example.com//x', 'double slash'],
    ['example.com/x/v1', 'a /v1 suffix'],
    ['example.com/é', 'non-ASCII'],
    ['example.com/x!y', 'a bang'],
    ['', 'empty'],
  ])('escapePath rejects %j (%s)', (path) => {
    expect(invalid(() => escapePath(path))).toMatchObject({ op: 'gomod.escapePath', module: path });
  });

  it.each([
    ['github.com/Azure/x', 'upper case is never part of an escaped path'],
    ['github.com/!Azure/x', 'bang before an upper-case letter'],
    ['github.com/!!azure/x', 'bang before a bang'],
    ['github.com/!1/x', 'bang before a digit'],
    ['github.com/azure/x!', 'trailing bang'],
    ['github.com/é/x', 'non-ASCII'],
    ['!github.com/x', 'decodes to upper case in the host'],
    ['example.com/x/v1', 'decodes to an invalid path'],
  ])('unescapePath rejects %j (%s)', (escaped) => {
    expect(invalid(() => unescapePath(escaped)).op).toBe('gomod.unescapePath');
  });
});

describe('escapeVersion / unescapeVersion', () => {
  it.each([
    ['v1.2.3', 'v1.2.3'],
    ['v1.0.0-RC1', 'v1.0.0-!r!c1'],
    ['v2.0.0+incompatible', 'v2.0.0+incompatible'],
    ['Master', '!master'],
    ['0123abcdef', '0123abcdef'],
  ])('%s ⇄ %s', (v, escaped) => {
    expect(escapeVersion(v)).toBe(escaped);
    expect(unescapeVersion(escaped)).toBe(v);
  });

  it.each(['', 'a/b', '..', 'v1.0.', 'v1!', 'con', 'vé', 'a:b'])('escapeVersion rejects %j', (v) => {
    expect(invalid(() => escapeVersion(v))).toMatchObject({ op: 'gomod.escapeVersion', version: v });
  });

  it.each(['V1.0.0', 'v1.0.0-!', 'v1.0.0-!A', 'a/b', '..', 'é'])('unescapeVersion rejects %j', (escaped) => {
    expect(invalid(() => unescapeVersion(escaped)).op).toBe('gomod.unescapeVersion');
  });
});
