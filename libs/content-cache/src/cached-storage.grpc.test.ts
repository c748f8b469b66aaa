import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { MemoryStorage } from '@modproxy/storage';
import { patternBuffer, readAll } from '@modproxy/storage/compliance';
import type { GrpcServedCall } from '@modproxy/grpc';
import { GrpcStorage, startStorageGrpcServer, type StorageGrpcServer } from '@modproxy/storage-grpc';
import { createTempDir, removeDir, waitUntil } from '@modproxy/testing';
import { CachedStorage } from './cached-storage';

const KiB = 1024;
const MiB = 1024 * KiB;
const module = 'example.com/cached/grpc';
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * The production shape's read path, for real: a replica's cache over GrpcStorage, talking to
 * the storage service (gRPC on loopback) over a backend. What the storage service answered is
 * counted from its own call listener, the one its metrics use.
 */
describe('CachedStorage over the storage service (gRPC)', () => {
  let dir: string;
  let backend: MemoryStorage;
  let server: StorageGrpcServer | undefined;
  let cache: CachedStorage | undefined;
  const served: GrpcServedCall[] = [];

  beforeEach(async () => {
    dir = await createTempDir('content-cache-grpc-');
    backend = new MemoryStorage();
    served.length = 0;
    server = await startStorageGrpcServer({ storage: backend, port: 0, onCall: (call) => served.push(call) });
    cache = await CachedStorage.open({
      storage: new GrpcStorage({ url: `127.0.0.1:${server.port}`, deadlineMs: 2_000 }),
      disk: { dir, maxBytes: 64 * MiB },
    });
  });

  afterEach(async () => {
    await cache?.close();
    await server?.close();
    await backend.close();
    await removeDir(dir);
  });

  async function store(version: string, zip: Buffer): Promise<void> {
    await backend.save({
      module,
      version,
      info: Buffer.from(JSON.stringify({ Version: version, Time: '2024-01-02T03:04:05Z' })),
      mod: Buffer.from(`module ${module}\n`),
      zip: Readable.from([zip], { objectMode: false }),
    });
  }

  const calls = (method: string) => served.filter((call) => call.method === method).length;

  it('serves warm info, go.mod and zips byte for byte with the storage service stopped', async () => {
    const small = patternBuffer(20 * KiB, 1);
    const large = patternBuffer(6 * MiB, 2);
    await store('v1.0.0', small);
    await store('v1.1.0', large);
    const c = cache as CachedStorage;

    const info = await c.info(module, 'v1.0.0');
    const mod = await c.mod(module, 'v1.0.0');
    // Eight clients miss the large zip at once: one GetZip fills the cache for all of them.
    const cold = await Promise.all(
      Array.from({ length: 8 }, async () => readAll((await c.zip(module, 'v1.1.0')).stream)),
    );
    for (const bytes of cold) expect(sha256(bytes)).toBe(sha256(large));
    expect(sha256(await readAll((await c.zip(module, 'v1.0.0')).stream))).toBe(sha256(small));
    await waitUntil(() => calls('GetZip') === 2, { what: 'both GetZip calls ended' });
    expect([calls('GetInfo'), calls('GetMod'), calls('GetZip')]).toEqual([1, 1, 2]);

    await server?.close();
    server = undefined;
    const before = served.length;
    for (let round = 0; round < 5; round++) {
      expect((await c.info(module, 'v1.0.0')).equals(info)).toBe(true);
      expect((await c.mod(module, 'v1.0.0')).equals(mod)).toBe(true);
      expect(await c.exists(module, 'v1.1.0')).toBe(true);
      const zip = await c.zip(module, 'v1.1.0');
      expect(zip.size).toBe(large.length);
      expect(sha256(await readAll(zip.stream))).toBe(sha256(large));
      expect((await readAll((await c.zip(module, 'v1.0.0')).stream)).equals(small)).toBe(true);
    }
    expect(served.length).toBe(before);
    // What the cache does not hold still needs the storage service, which is gone.
    const missing = await c.info(module, 'v9.9.9').catch((error: unknown) => error);
    expect(isModuleError(missing, 'unavailable')).toBe(true);
  });

  it('never keeps a zip whose bytes differ from the SHA-256 the storage service vouched for', async () => {
    const zip = patternBuffer(2 * MiB, 3);
    await store('v2.0.0', zip);
    // A backend whose stored digest no longer matches its bytes (a damaged chunk, say).
    const damaged = Object.assign(Object.create(backend) as MemoryStorage, {
      zip: async (m: string, v: string) => ({
        ...(await backend.zip(m, v)),
        sha256: sha256(Buffer.from('x')),
      }),
    });
    await server?.close();
    server = await startStorageGrpcServer({ storage: damaged, port: 0 });
    const c = await CachedStorage.open({
      storage: new GrpcStorage({ url: `127.0.0.1:${server.port}` }),
      disk: { dir, maxBytes: 64 * MiB },
    });
    try {
      const read = await c.zip(module, 'v2.0.0');
      const failure = await readAll(read.stream).catch((error: unknown) => error);
      expect(String(failure)).toMatch(/SHA-256/);
      await waitUntil(() => c.stats().disk.entries === 0, { what: 'nothing kept' });
    } finally {
      await c.close();
    }
  });

  it('hands on the digest the backend knows in the zip header', async () => {
    const zip = patternBuffer(300 * KiB, 4);
    await store('v3.0.0', zip);
    const grpc = new GrpcStorage({ url: `127.0.0.1:${server?.port ?? 0}` });
    try {
      const content = await grpc.zip(module, 'v3.0.0');
      expect(content.sha256).toBe(sha256(zip));
      expect(sha256(await readAll(content.stream))).toBe(sha256(zip));
    } finally {
      await grpc.close();
    }
  });
});
