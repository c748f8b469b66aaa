import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { escapePath } from '@modproxy/gomod';
import { createLogger } from '@modproxy/observability';
import { MemoryStorage } from '@modproxy/storage';
import { patternBuffer } from '@modproxy/storage/compliance';
import type { GrpcServedCall } from '@modproxy/grpc';
import { startStorageGrpcServer, type StorageGrpcServer } from '@modproxy/storage-grpc';
import {
  createTempDir,
  getFreePort,
  removeDir,
  startRedisServer,
  waitUntil,
  type RedisServer,
} from '@modproxy/testing';
import { loadProxyConfig } from './config';
import { startProxy, type RunningProxy } from './server';

const KiB = 1024;
const MiB = 1024 * KiB;
const module = 'example.com/Content/Cache';
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

const silent = () =>
  createLogger({
    service: 'proxy-test',
    level: 'warn',
    destination: new Writable({ write: (_chunk, _encoding, done) => done() }),
  });

async function get(url: string, init: RequestInit = {}): Promise<{ status: number; body: Buffer }> {
  const response = await fetch(url, init);
  return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
}

/**
 * The production shape's read path in process: proxy replicas (each with its own content cache
 * directory) over a real storage service on gRPC, purges through the queue Redis (real); the
 * storage service's calls are counted by its own call listener.
 */
describe('the content cache of proxy replicas (storage service over gRPC, queue Redis)', () => {
  let redis: RedisServer;
  let root: string;
  let backend: MemoryStorage;
  let grpcPort: number;
  let server: StorageGrpcServer | undefined;
  let prefix: string;
  const served: GrpcServedCall[] = [];
  const proxies: RunningProxy[] = [];
  const zips = new Map<string, Buffer>();

  beforeAll(async () => {
    redis = await startRedisServer();
  });

  afterAll(async () => {
    await redis?.stop();
  });

  beforeEach(async () => {
    root = await createTempDir('proxy-content-cache-');
    prefix = `cache-${Math.random().toString(16).slice(2, 10)}`;
    backend = new MemoryStorage();
    served.length = 0;
    grpcPort = await getFreePort();
    server = await startStorageGrpcServer({
      storage: backend,
      port: grpcPort,
      onCall: (call) => served.push(call),
    });
    for (const [version, size] of [
      ['v1.0.0', 20 * KiB],
      ['v1.1.0', 3 * MiB],
    ] as const) {
      const zip = patternBuffer(size, size);
      zips.set(version, zip);
      await backend.save({
        module,
        version,
        info: Buffer.from(JSON.stringify({ Version: version, Time: '2024-01-02T03:04:05Z' })),
        mod: Buffer.from(`module ${module}\n`),
        zip: Readable.from([zip], { objectMode: false }),
      });
    }
  });

  afterEach(async () => {
    while (proxies.length > 0) await proxies.pop()?.shutdown();
    await server?.close();
    await removeDir(root);
  });

  async function replica(name: string): Promise<RunningProxy> {
    const config = loadProxyConfig({
      env: {
        PORT: '0',
        STORAGE_TYPE: 'grpc',
        STORAGE_GRPC_URL: `127.0.0.1:${grpcPort}`,
        QUEUE_REDIS_URL: redis.url,
        // One prefix for the replicas of a test: the purges' stream is under it.
        QUEUE_PREFIX: prefix,
        // Misses are not fetched: a purged version is answered 404 at once.
        DOWNLOAD_MODE: 'none',
        UPSTREAM: 'off',
        CACHE_DIR: join(root, name),
        CACHE_MAX_BYTES: String(64 * MiB),
        ADMIN_PORT: '0',
        ADMIN_ALLOW_UNAUTHENTICATED: 'true',
      },
    });
    const proxy = await startProxy(config, silent());
    proxies.push(proxy);
    return proxy;
  }

  const path = (version: string, file: 'info' | 'mod' | 'zip') =>
    `/${escapePath(module)}/@v/${version}.${file}`;
  const reads = () => served.filter((call) => /^(Stat|GetInfo|GetMod|GetZip)$/.test(call.method)).length;

  async function expectServed(proxy: RunningProxy, version: string): Promise<void> {
    const info = await get(`${proxy.url}${path(version, 'info')}`);
    expect([info.status, JSON.parse(info.body.toString()).Version]).toEqual([200, version]);
    const mod = await get(`${proxy.url}${path(version, 'mod')}`);
    expect([mod.status, mod.body.toString()]).toEqual([200, `module ${module}\n`]);
    const zip = await get(`${proxy.url}${path(version, 'zip')}`);
    expect([zip.status, sha256(zip.body)]).toEqual([200, sha256(zips.get(version) ?? Buffer.alloc(0))]);
  }

  it('serves warm hits without a call to the storage service, also while it is stopped', async () => {
    const proxy = await replica('a');
    for (const version of ['v1.0.0', 'v1.1.0']) await expectServed(proxy, version);
    const cold = reads();
    expect(cold).toBeGreaterThan(0);
    for (let round = 0; round < 3; round++) {
      for (const version of ['v1.0.0', 'v1.1.0']) await expectServed(proxy, version);
    }
    expect(reads()).toBe(cold);

    await server?.close();
    server = undefined;
    for (const version of ['v1.0.0', 'v1.1.0']) await expectServed(proxy, version);
    // What it does not hold needs the storage service.
    expect((await get(`${proxy.url}${path('v9.0.0', 'info')}`)).status).toBe(503);

    const metrics = (await get(`${proxy.url}/metrics`)).body.toString();
    const count = (labels: string) =>
      Number(new RegExp(`^modproxy_content_cache_reads_total\\{${labels}\\} (\\d+)`, 'm').exec(metrics)?.[1]);
    expect(count('file="info",source="memory"')).toBe(8);
    expect(count('file="zip",source="disk"')).toBe(4);
    expect(count('file="zip",source="memory"')).toBe(4);
    expect(count('file="zip",source="storage"')).toBe(2);
    expect(metrics).toMatch(/^modproxy_content_cache_bytes\{tier="disk"\} 3145728$/m);
    expect(metrics).not.toContain(module);
  });

  it('drops a version purged through one replica’s admin port from all three replicas', async () => {
    const all = [await replica('a'), await replica('b'), await replica('c')];
    for (const proxy of all) for (const version of ['v1.0.0', 'v1.1.0']) await expectServed(proxy, version);

    const purge = await get(`${all[1]?.adminUrl ?? ''}/modules/${escapePath(module)}/@v/v1.1.0`, {
      method: 'DELETE',
    });
    expect([purge.status, purge.body.toString()]).toEqual([
      200,
      `deleted ${module}@v1.1.0; every replica's content cache drops it\n`,
    ]);
    expect(await backend.exists(module, 'v1.1.0')).toBe(false);
    for (const proxy of all) {
      await waitUntil(async () => (await get(`${proxy.url}${path('v1.1.0', 'zip')}`)).status === 404, {
        what: `${proxy.url} drops the purged zip`,
      });
      for (const file of ['info', 'mod'] as const) {
        expect((await get(`${proxy.url}${path('v1.1.0', file)}`)).status).toBe(404);
      }
    }
    // The other version is still every replica's, from its own cache.
    const before = reads();
    for (const proxy of all) await expectServed(proxy, 'v1.0.0');
    expect(reads()).toBe(before);

    // Purging it again: storage no longer has it; the caches are told anyway.
    const again = await get(`${all[0]?.adminUrl ?? ''}/modules/${escapePath(module)}/@v/v1.1.0`, {
      method: 'DELETE',
    });
    expect(again.status).toBe(404);
    for (const bad of ['/modules/example.com/x/@v/main', '/modules/Example.com/x/@v/v1.0.0']) {
      const refused = await get(`${all[0]?.adminUrl ?? ''}${bad}`, { method: 'DELETE' });
      expect([refused.status, refused.body.toString()]).toEqual([400, expect.stringMatching(/\n$/)]);
    }
    // A browser page of another site cannot purge.
    const crossSite = await get(`${all[0]?.adminUrl ?? ''}/modules/${escapePath(module)}/@v/v1.0.0`, {
      method: 'DELETE',
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect(crossSite.status).toBe(403);
    expect(await backend.exists(module, 'v1.0.0')).toBe(true);
  });
});
