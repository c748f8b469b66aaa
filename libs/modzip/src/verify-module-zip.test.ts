import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ErrorKind, isModuleError } from '@modproxy/errors';
import { synthesizedGoMod, verifyGoModMatches, verifyModuleZip, type VerifyModuleZipOptions } from './index';
import { buildZip } from '@modproxy/testing';

const MODULE = 'example.com/unit';
const VERSION = 'v1.0.0';
const GO_MOD = `module ${MODULE}\n`;

describe('verifyModuleZip', () => {
  let dir: string;
  let good: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'modzip-unit-'));
    good = join(dir, 'good.zip');
    await writeFile(
      good,
      await buildZip([
        { name: `${MODULE}@${VERSION}/go.mod`, data: GO_MOD },
        { name: `${MODULE}@${VERSION}/x.go`, data: 'package unit\n'.repeat(10) },
      ]),
    );
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function failure(
    zipPath: string,
    module: string,
    version: string,
    options?: VerifyModuleZipOptions,
  ): Promise<ErrorKind> {
    try {
      await verifyModuleZip(zipPath, module, version, options);
    } catch (error) {
      if (isModuleError(error)) {
        expect(error).toMatchObject({ module, version });
        return error.kind;
      }
      throw error;
    }
    throw new Error('expected verifyModuleZip to fail');
  }

  it('returns the hash, counts and go.mod of a good zip', async () => {
    const verified = await verifyModuleZip(good, MODULE, VERSION);
    expect(verified).toMatchObject({ files: 2, size: GO_MOD.length + 'package unit\n'.length * 10 });
    expect(verified.h1).toMatch(/^h1:/);
    expect(verified.goMod?.toString()).toBe(GO_MOD);
  });

  it.each([
    [MODULE, 'v1.0', 'non-canonical version'],
    [MODULE, 'v1.0.0+build', 'build metadata'],
    [MODULE, 'master', 'not a version'],
    [MODULE, 'v2.0.0', 'major version without /v2'],
    ['Example.com/unit', VERSION, 'upper-case host'],
    [`${MODULE}/v1`, VERSION, '/v1 suffix'],
  ])('refuses %s@%s (%s) before reading the zip', async (module, version) => {
    expect(await failure(join(dir, 'does-not-exist.zip'), module, version)).toBe('invalid-argument');
  });

  it('refuses a zip named for another version (prefix carries the version)', async () => {
    expect(await failure(good, MODULE, 'v1.0.1')).toBe('invalid-argument');
  });

  it('reports a missing zip as not-found', async () => {
    expect(await failure(join(dir, 'missing.zip'), MODULE, VERSION)).toBe('not-found');
  });

  it('refuses a file that is not a zip', async () => {
    const notZip = join(dir, 'not.zip');
    await writeFile(notZip, 'this is not a zip file at all, just text');
    expect(await failure(notZip, MODULE, VERSION)).toBe('invalid-argument');
  });

  it('enforces a lower size limit on the contents and on the zip file', async () => {
    const verified = await verifyModuleZip(good, MODULE, VERSION);
    expect(await failure(good, MODULE, VERSION, { maxSize: verified.size - 1 })).toBe('invalid-argument');
    expect(await failure(good, MODULE, VERSION, { maxSize: 10 })).toBe('invalid-argument');
    await expect(
      verifyModuleZip(good, MODULE, VERSION, { maxSize: verified.size + 1000 }),
    ).resolves.toMatchObject({ h1: verified.h1 });
  });

  it('stops when its signal is aborted, telling cancellation from deadline', async () => {
    const cancelled = new AbortController();
    cancelled.abort();
    expect(await failure(good, MODULE, VERSION, { signal: cancelled.signal })).toBe('cancelled');
    const late = new AbortController();
    late.abort(new DOMException('deadline', 'TimeoutError'));
    expect(await failure(good, MODULE, VERSION, { signal: late.signal })).toBe('timeout');
  });
});

describe('verifyGoModMatches', () => {
  const zipGoMod = Buffer.from('module example.com/m\n\ngo 1.21\n');

  it('accepts the zip go.mod itself, or the synthesized one when the zip has none', () => {
    expect(() =>
      verifyGoModMatches(zipGoMod, Buffer.from(zipGoMod), 'example.com/m', 'v1.0.0'),
    ).not.toThrow();
    expect(() =>
      verifyGoModMatches(
        undefined,
        Buffer.from('module example.com/m\n'),
        'example.com/m',
        'v2.0.0+incompatible',
      ),
    ).not.toThrow();
    expect(synthesizedGoMod('example.com/m').toString()).toBe('module example.com/m\n');
  });

  const refusals: [string, Buffer | undefined, string][] = [
    ['a .mod that differs from the zip go.mod', zipGoMod, 'module example.com/m\n'],
    ['one extra byte', zipGoMod, 'module example.com/m\n\ngo 1.21\n\n'],
    ['a real go.mod for a zip without one', undefined, 'module example.com/m\n\ngo 1.21\n'],
    ['a synthesized go.mod for another module', undefined, 'module example.com/other\n'],
  ];
  it.each(refusals)('refuses %s', (_what, zip, mod) => {
    try {
      verifyGoModMatches(zip, Buffer.from(mod), 'example.com/m', 'v1.0.0');
      expect.unreachable();
    } catch (error) {
      expect(isModuleError(error, 'invalid-argument')).toBe(true);
      expect(error).toMatchObject({
        module: 'example.com/m',
        version: 'v1.0.0',
        op: 'modzip.verifyGoModMatches',
      });
    }
  });
});
