import { writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errors, isModuleError } from '@modproxy/errors';
import { MemoryStorage } from '@modproxy/storage';
import { buildZip, createTempDir, removeDir } from '@modproxy/testing';
import type { FetchedVersion, Upstream } from '@modproxy/upstream';
import { UpstreamVersions } from '@modproxy/versions';
import { type DownloadMode, ModuleService } from './module-service';

const MODULE = 'example.test/unit';

interface Published {
  info: Buffer;
  mod: Buffer;
  zip: Buffer;
}

/** An in-memory upstream for unit tests: serves what the test published, counts fetches. */
class TestUpstream implements Upstream {
  readonly name = 'test';
  readonly published = new Map<string, Published>();
  fetches = 0;
  failWith: Error | undefined;

  constructor(private readonly dir: string) {}

  async list(module: string): Promise<string[]> {
    return [...this.published.keys()]
      .filter((key) => key.startsWith(`${module}@`))
      .map((key) => key.split('@')[1] ?? '');
  }

  async latest(module: string): Promise<Buffer> {
    throw errors.notFound('test.latest', `no latest for ${module}`);
  }

  async info(module: string, query: string): Promise<Buffer> {
    const found = this.published.get(`${module}@${query}`);
    if (!found) throw errors.notFound('test.info', `${module}@${query} not found`);
    return found.info;
  }

  async fetch(module: string, version: string): Promise<FetchedVersion> {
    this.fetches += 1;
    if (this.failWith) throw this.failWith;
    const found = this.published.get(`${module}@${version}`);
    if (!found) throw errors.notFound('test.fetch', `${module}@${version} not found`);
    const zipPath = join(this.dir, `${this.fetches}.zip`);
    await writeFile(zipPath, found.zip);
    return {
      module,
      version,
      info: found.info,
      mod: found.mod,
      zipSize: found.zip.length,
      zipPath,
      openZip: () => createReadStream(zipPath),
      release: async () => undefined,
    };
  }
}

async function publish(
  upstream: TestUpstream,
  version: string,
  files: Record<string, string>,
): Promise<void> {
  const mod = `module ${MODULE}\n\ngo 1.21\n`;
  const entries = Object.entries({ 'go.mod': mod, ...files }).map(([name, data]) => ({
    name: `${MODULE}@${version}/${name}`,
    data,
  }));
  upstream.published.set(`${MODULE}@${version}`, {
    info: Buffer.from(JSON.stringify({ Version: version, Time: '2024-01-01T00:00:00Z' })),
    mod: Buffer.from(mod),
    zip: await buildZip(entries),
  });
}

describe('ModuleService', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await createTempDir('module-service-test-');
  });
  afterAll(() => removeDir(dir));

  function setup(mode: DownloadMode = 'sync') {
    const storage = new MemoryStorage();
    const upstream = new TestUpstream(dir);
    const versions = new UpstreamVersions({ storage, ...(mode === 'none' ? {} : { upstream }) });
    const service = new ModuleService({ storage, upstream, versions, downloadMode: mode });
    return { storage, upstream, service };
  }

  it('fetches a missing version once, stores it, and serves later requests from storage', async () => {
    const { storage, upstream, service } = setup();
    await publish(upstream, 'v1.0.0', { 'a.go': 'package unit\n' });
    const results = await Promise.all(Array.from({ length: 20 }, () => service.mod(MODULE, 'v1.0.0')));
    expect(new Set(results.map((mod) => mod.toString())).size).toBe(1);
    expect(upstream.fetches).toBe(1);
    expect(await storage.exists(MODULE, 'v1.0.0')).toBe(true);
    await service.zip(MODULE, 'v1.0.0').then(({ stream }) => stream.destroy());
    expect(upstream.fetches).toBe(1);
  });

  it('never stores a version whose zip breaks the module zip rules, and says upstream is at fault', async () => {
    const { storage, upstream, service } = setup();
    await publish(upstream, 'v1.0.0', {});
    const published = upstream.published.get(`${MODULE}@v1.0.0`)!;
    published.zip = await buildZip([{ name: `other.test/x@v1.0.0/go.mod`, data: 'module other.test/x\n' }]);
    const failure = await service.zip(MODULE, 'v1.0.0').catch((error: unknown) => error);
    expect(isModuleError(failure, 'bad-gateway')).toBe(true);
    expect(await storage.exists(MODULE, 'v1.0.0')).toBe(false);
  });

  it('never stores a version whose go.mod differs from the one in its zip', async () => {
    const { storage, upstream, service } = setup();
    await publish(upstream, 'v1.0.0', {});
    upstream.published.get(`${MODULE}@v1.0.0`)!.mod = Buffer.from(
      `module ${MODULE}\n\nrequire evil.test/x v1.0.0\n`,
    );
    const failure = await service.mod(MODULE, 'v1.0.0').catch((error: unknown) => error);
    expect(isModuleError(failure, 'bad-gateway')).toBe(true);
    expect(await storage.list(MODULE)).toEqual([]);
  });

  it('does not remember a failed fetch', async () => {
    const { upstream, service } = setup();
    await publish(upstream, 'v1.0.0', {});
    upstream.failWith = errors.badGateway('test.fetch', 'upstream down');
    await expect(service.info(MODULE, 'v1.0.0')).rejects.toMatchObject({ kind: 'bad-gateway' });
    upstream.failWith = undefined;
    const { info } = await service.info(MODULE, 'v1.0.0');
    expect(JSON.parse(info.toString()).Version).toBe('v1.0.0');
    expect(upstream.fetches).toBe(2);
  });

  it('in async mode answers not-found at once and stores the version in the background', async () => {
    const { storage, upstream, service } = setup('async');
    await publish(upstream, 'v1.0.0', {});
    await expect(service.zip(MODULE, 'v1.0.0')).rejects.toMatchObject({ kind: 'not-found' });
    await expect.poll(() => storage.exists(MODULE, 'v1.0.0')).toBe(true);
    const zip = await service.zip(MODULE, 'v1.0.0');
    zip.stream.destroy();
    expect(zip.size).toBeGreaterThan(0);
  });

  it('in none mode never asks upstream', async () => {
    const { upstream, service } = setup('none');
    await publish(upstream, 'v1.0.0', {});
    await expect(service.zip(MODULE, 'v1.0.0')).rejects.toMatchObject({ kind: 'not-found' });
    await expect(service.list(MODULE)).rejects.toMatchObject({ kind: 'not-found' });
    expect(upstream.fetches).toBe(0);
  });

  it('rejects invalid module paths and non-canonical versions before any I/O', async () => {
    const { upstream, service } = setup();
    await expect(service.zip('Example.test/x', 'v1.0.0')).rejects.toMatchObject({ kind: 'invalid-argument' });
    await expect(service.zip(MODULE, 'v1.0')).rejects.toMatchObject({ kind: 'invalid-argument' });
    await expect(service.info(MODULE, 'bad version!')).rejects.toMatchObject({ kind: 'invalid-argument' });
    expect(upstream.fetches).toBe(0);
  });

  it('lists stored and upstream versions together, without pseudo-versions', async () => {
    const { upstream, service } = setup();
    await publish(upstream, 'v1.1.0', {});
    await publish(upstream, 'v0.0.0-20240101000000-abcdefabcdef', {});
    await service.mod(MODULE, 'v0.0.0-20240101000000-abcdefabcdef');
    upstream.published.delete(`${MODULE}@v0.0.0-20240101000000-abcdefabcdef`);
    await publish(upstream, 'v1.2.0', {});
    await service.mod(MODULE, 'v1.2.0');
    upstream.published.delete(`${MODULE}@v1.2.0`);
    expect((await service.list(MODULE)).versions).toEqual(['v1.1.0', 'v1.2.0']);
  });
});
