import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { escapePath } from '@modproxy/gomod';
import { MemoryStorage } from '@modproxy/storage';
import { createTempDir, removeDir, startStaticGoproxy, type StaticGoproxy } from '@modproxy/testing';
import { GoproxyUpstream } from '@modproxy/upstream';
import { CachedVersions, MemoryVersionStore } from '@modproxy/versions';
import { GrpcVersions } from './grpc-versions';
import { startVersionsGrpcServer, type VersionsGrpcServer } from './versions-grpc-server';

const MODULE = 'example.test/refreshed/lib';
const TOKEN = 'refresh-secret-token';

describe('Refresh over gRPC', () => {
  let dir: string;
  let upstream: StaticGoproxy;
  let engine: CachedVersions;
  let server: VersionsGrpcServer;
  let client: GrpcVersions;

  async function publish(versions: string[]): Promise<void> {
    const base = join(dir, escapePath(MODULE), '@v');
    await mkdir(base, { recursive: true });
    await writeFile(join(base, 'list'), versions.map((version) => `${version}\n`).join(''));
  }

  beforeAll(async () => {
    dir = await createTempDir('versions-grpc-refresh-');
    await publish(['v1.0.0']);
    upstream = await startStaticGoproxy(dir);
    engine = new CachedVersions({
      store: new MemoryVersionStore(),
      storage: new MemoryStorage(),
      upstream: new GoproxyUpstream({ url: upstream.url }),
    });
    server = await startVersionsGrpcServer({ service: engine, port: 0, token: TOKEN });
    client = new GrpcVersions({ url: `127.0.0.1:${server.port}`, token: TOKEN });
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
    await engine?.close();
    await upstream?.stop();
    await removeDir(dir);
  });

  it('makes lathens ask upstream now, and answers the list every caller then gets', async () => {
    expect((await client.list(MODULE)).versions).toEqual(['v1.0.0']);
    await publish(['v1.0.0', 'v1.1.0']);
    expect((await client.list(MODULE)).versions).toEqual(['v1.0.0']);
    expect(await client.refreshList(MODULE)).toEqual({
      versions: ['v1.0.0', 'v1.1.0'],
      source: 'upstream',
      stale: false,
    });
    expect(await client.list(MODULE)).toEqual({
      versions: ['v1.0.0', 'v1.1.0'],
      source: 'cache',
      stale: false,
    });
  });

  it('refuses a caller without the token and a malformed module path', async () => {
    const anonymous = new GrpcVersions({ url: `127.0.0.1:${server.port}` });
    try {
      const refused = await anonymous.refreshList(MODULE).catch((error: unknown) => error);
      expect(isModuleError(refused)).toBe(true);
      expect((refused as Error).message).toMatch(/token/);
    } finally {
      await anonymous.close();
    }
    const invalid = await client.refreshList('-bad/../path').catch((error: unknown) => error);
    expect(isModuleError(invalid, 'invalid-argument')).toBe(true);
  });
});
