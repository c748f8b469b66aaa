import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapePath } from '@modproxy/gomod';
import { MemoryStorage } from '@modproxy/storage';
import { isModuleError } from '@modproxy/errors';
import {
  createTempDir,
  createTestCertificates,
  getFreePort,
  removeDir,
  startStaticGoproxy,
  type StaticGoproxy,
} from '@modproxy/testing';
import { GoproxyUpstream } from '@modproxy/upstream';
import { CachedVersions, FailoverVersions, MemoryVersionStore, UpstreamVersions } from '@modproxy/versions';
import { GrpcVersions } from './grpc-versions';
import { startVersionsGrpcServer, type VersionsGrpcServer } from './versions-grpc-server';

const MODULE = 'example.test/Grpc/lib';
const INFO = '{"Version":"v1.2.0","Time":"2024-03-04T05:06:07Z","Origin":{"VCS":"git","Hash":"abc"}}';

describe('GrpcVersions against the VersionService server', () => {
  let dir: string;
  let upstream: StaticGoproxy;
  let engine: CachedVersions;
  let server: VersionsGrpcServer;
  let client: GrpcVersions;
  const storage = new MemoryStorage();

  beforeAll(async () => {
    dir = await createTempDir('versions-grpc-');
    const base = join(dir, escapePath(MODULE));
    await mkdir(join(base, '@v'), { recursive: true });
    await writeFile(join(base, '@v', 'list'), 'v1.0.0\nv1.2.0\nv1.10.0-rc.1\n');
    await writeFile(join(base, '@latest'), INFO);
    upstream = await startStaticGoproxy(dir, { slowDelayMs: 2_000 });
    engine = new CachedVersions({
      store: new MemoryVersionStore(),
      storage,
      upstream: new GoproxyUpstream({ url: upstream.url }),
    });
    server = await startVersionsGrpcServer({ service: engine, port: 0, token: 'secret-token' });
    client = new GrpcVersions({ url: `127.0.0.1:${server.port}`, token: 'secret-token' });
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
    await engine?.close();
    await upstream?.stop();
    await removeDir(dir);
  });

  it('lists and answers latest with the info bytes as upstream sent them', async () => {
    expect(await client.list(MODULE)).toEqual({
      versions: ['v1.0.0', 'v1.2.0', 'v1.10.0-rc.1'],
      source: 'upstream',
      stale: false,
    });
    expect(await client.list(MODULE)).toEqual({
      versions: ['v1.0.0', 'v1.2.0', 'v1.10.0-rc.1'],
      source: 'cache',
      stale: false,
    });
    const latest = await client.latest(MODULE);
    expect(latest.info.toString()).toBe(INFO);
    expect(latest.source).toBe('upstream');
  });

  it('observes only stored versions, and invalidates, through the service', async () => {
    await expect(client.observe(MODULE, 'v1.3.0')).rejects.toMatchObject({ kind: 'not-found' });
    expect((await client.list(MODULE)).versions).toEqual(['v1.0.0', 'v1.2.0', 'v1.10.0-rc.1']);
    await storage.save({
      module: MODULE,
      version: 'v1.3.0',
      info: Buffer.from('{"Version":"v1.3.0"}'),
      mod: Buffer.from(`module ${MODULE}\n`),
      zip: Readable.from([Buffer.from('zip bytes')]),
    });
    await client.observe(MODULE, 'v1.3.0');
    expect((await client.list(MODULE)).versions).toEqual(['v1.0.0', 'v1.2.0', 'v1.3.0', 'v1.10.0-rc.1']);
    const before = upstream.requestCount(`/${escapePath(MODULE)}/@v/list`);
    await client.invalidate(MODULE);
    expect((await client.list(MODULE)).source).toBe('upstream');
    expect(upstream.requestCount(`/${escapePath(MODULE)}/@v/list`)).toBe(before + 1);
    await storage.delete(MODULE, 'v1.3.0');
    await client.invalidate(MODULE);
  });

  it('carries error kinds: not found, invalid input, wrong token', async () => {
    await expect(client.list('example.test/nothing/here')).rejects.toMatchObject({ kind: 'not-found' });
    await expect(client.latest('Not A Module')).rejects.toMatchObject({ kind: 'invalid-argument' });
    await expect(client.observe(MODULE, 'v1.2')).rejects.toMatchObject({ kind: 'invalid-argument' });
    const stranger = new GrpcVersions({ url: `127.0.0.1:${server.port}`, token: 'wrong' });
    await expect(stranger.list(MODULE)).rejects.toMatchObject({ kind: 'failed-precondition' });
    await stranger.close();
  });

  it('gives up at its deadline, and at the caller’s signal', async () => {
    await upstream.setMode('slow');
    try {
      const impatient = new GrpcVersions({
        url: `127.0.0.1:${server.port}`,
        token: 'secret-token',
        deadlineMs: 300,
      });
      // Nothing else can time out: the server's upstream answers (not found) after 2 s, within
      // its own 30 s deadline.
      await expect(impatient.list('example.test/slow/one')).rejects.toMatchObject({ kind: 'timeout' });
      await impatient.close();
      await expect(
        client.list('example.test/slow/two', { signal: AbortSignal.timeout(200) }),
      ).rejects.toMatchObject({ kind: 'timeout' });
    } finally {
      await upstream.setMode('ok');
    }
  });

  it('reports health, and says unavailable once the server is gone; failover then answers', async () => {
    expect(await client.serving()).toBe(true);
    server.setServing(false);
    expect(await client.serving()).toBe(false);
    server.setServing(true);

    const dead = new GrpcVersions({
      url: `127.0.0.1:${await getFreePort()}`,
      deadlineMs: 2_000,
      shortDeadlineMs: 1_000,
    });
    await expect(dead.list(MODULE)).rejects.toMatchObject({ kind: 'unavailable' });
    expect(await dead.serving()).toBe(false);
    const failovers: string[] = [];
    const failover = new FailoverVersions({
      primary: dead,
      fallback: new UpstreamVersions({ storage, upstream: new GoproxyUpstream({ url: upstream.url }) }),
      onFailover: (operation, error) => failovers.push(`${operation} ${error.kind}`),
    });
    expect(failover.degraded).toBe(false);
    expect(await failover.list(MODULE)).toEqual({
      versions: ['v1.0.0', 'v1.2.0', 'v1.10.0-rc.1'],
      source: 'upstream',
      stale: false,
    });
    expect(failovers).toEqual(['list unavailable']);
    expect(failover.degraded).toBe(true);
    await failover.close();
  });
});

describe('VersionService over TLS', () => {
  it('answers clients that trust its CA, health checks included, and nothing to plaintext clients or clients of another CA', async () => {
    const { ca, server: identity } = createTestCertificates();
    const storage = new MemoryStorage();
    const engine = new CachedVersions({ store: new MemoryVersionStore(), storage });
    await storage.save({
      module: MODULE,
      version: 'v1.0.0',
      info: Buffer.from('{"Version":"v1.0.0"}'),
      mod: Buffer.from(`module ${MODULE}\n`),
      zip: Readable.from([Buffer.from('zip bytes')]),
    });
    const server = await startVersionsGrpcServer({ service: engine, port: 0, tls: identity });
    const url = `127.0.0.1:${server.port}`;
    const secure = new GrpcVersions({ url, tls: { ca: ca.cert } });
    const plain = new GrpcVersions({ url, tls: false, deadlineMs: 2_000, shortDeadlineMs: 2_000 });
    const stranger = new GrpcVersions({
      url,
      tls: { ca: createTestCertificates({ caName: 'another CA' }).ca.cert },
      deadlineMs: 2_000,
      shortDeadlineMs: 2_000,
    });
    try {
      expect(await secure.serving()).toBe(true);
      expect((await secure.list(MODULE)).versions).toEqual(['v1.0.0']);
      for (const client of [plain, stranger]) {
        const error = await client.list(MODULE).catch((e: unknown) => e);
        expect(isModuleError(error, 'unavailable') || isModuleError(error, 'timeout'), String(error)).toBe(
          true,
        );
        expect(await client.serving()).toBe(false);
      }
    } finally {
      await Promise.all([secure.close(), plain.close(), stranger.close()]);
      await server.close();
      await engine.close();
    }
  });
});
