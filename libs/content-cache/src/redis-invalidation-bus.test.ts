import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { createQueueRedis } from '@modproxy/queue';
import { MemoryStorage } from '@modproxy/storage';
import { patternBuffer, readAll } from '@modproxy/storage/compliance';
import type { GrpcServedCall } from '@modproxy/grpc';
import { GrpcStorage, startStorageGrpcServer, type StorageGrpcServer } from '@modproxy/storage-grpc';
import {
  createTempDir,
  removeDir,
  startRedisServer,
  startTcpRelay,
  waitUntil,
  type RedisServer,
} from '@modproxy/testing';
import { CachedStorage } from './cached-storage';
import { RedisInvalidationBus } from './redis-invalidation-bus';

const KiB = 1024;
const MiB = 1024 * KiB;
const module = 'example.com/cached/replicas';
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

interface Replica {
  name: string;
  cache: CachedStorage;
  dir: string;
  /** What this replica's cache reported once it was started. */
  seen: string[];
  /** What it reported while starting (catching up with the stream). */
  startedWith?: string[];
}

/**
 * Three proxy replicas' caches, each with its own disk tier and its own connection to the queue
 * Redis (real, on loopback), over one storage service (gRPC, real) whose calls are counted: what
 * a purge through one replica does to the others.
 */
describe('purges reach every replica (Redis stream on the queue Redis, 3 replicas)', () => {
  let redis: RedisServer;
  let root: string;
  let backend: MemoryStorage;
  let server: StorageGrpcServer;
  let prefix: string;
  const served: GrpcServedCall[] = [];
  const replicas: Replica[] = [];
  const connections: Redis[] = [];
  const zips = new Map<string, Buffer>();

  beforeAll(async () => {
    redis = await startRedisServer();
  });

  afterAll(async () => {
    await redis?.stop();
  });

  beforeEach(async () => {
    root = await createTempDir('content-cache-replicas-');
    prefix = `t${Math.random().toString(16).slice(2, 10)}`;
    backend = new MemoryStorage();
    served.length = 0;
    server = await startStorageGrpcServer({ storage: backend, port: 0, onCall: (call) => served.push(call) });
    for (const [i, version] of ['v1.0.0', 'v1.1.0'].entries()) {
      const zip = patternBuffer(1 * MiB + i, 10 + i);
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
    while (replicas.length > 0) await replicas.pop()?.cache.close();
    while (connections.length > 0) connections.pop()?.disconnect();
    await server.close();
    await removeDir(root);
  });

  async function startReplica(
    name: string,
    options: { maxEntries?: number; redisUrl?: string; startTimeoutMs?: number } = {},
  ): Promise<Replica> {
    const connection = createQueueRedis(options.redisUrl ?? redis.url);
    connections.push(connection);
    const dir = join(root, name);
    const seen: string[] = [];
    const cache = await CachedStorage.open({
      storage: new GrpcStorage({ url: `127.0.0.1:${server.port}`, deadlineMs: 2_000 }),
      disk: { dir: join(dir, 'cache'), maxBytes: 64 * MiB },
      bus: new RedisInvalidationBus({
        connection,
        prefix,
        cursorFile: join(dir, 'cache', 'invalidations.cursor'),
        publishTimeoutMs: 1_000,
        blockMs: 200,
        ...(options.maxEntries === undefined ? {} : { maxEntries: options.maxEntries }),
        ...(options.startTimeoutMs === undefined ? {} : { startTimeoutMs: options.startTimeoutMs }),
      }),
      events: {
        invalidated: (origin) => seen.push(`invalidated ${origin}`),
        cleared: () => seen.push('cleared'),
      },
    });
    const replica = { name, cache, dir, seen: [...seen] };
    // What start-up did stays in `startedWith`; `seen` records what happens from now on.
    const startedWith = [...seen];
    seen.length = 0;
    replica.seen = seen;
    replicas.push(replica);
    return Object.assign(replica, { startedWith });
  }

  async function stopReplica(replica: Replica): Promise<void> {
    replicas.splice(replicas.indexOf(replica), 1);
    await replica.cache.close();
  }

  async function warm(replica: Replica, version: string): Promise<void> {
    await replica.cache.info(module, version);
    await replica.cache.mod(module, version);
    const zip = await replica.cache.zip(module, version);
    expect(sha256(await readAll(zip.stream))).toBe(sha256(zips.get(version) ?? Buffer.alloc(0)));
  }

  async function holds(replica: Replica, version: string): Promise<boolean> {
    // With storage answering nothing for the purged version, only a cached copy can answer.
    return replica.cache.info(module, version).then(
      () => true,
      (error: unknown) => {
        if (isModuleError(error, 'not-found')) return false;
        throw error;
      },
    );
  }

  const storageReads = () => served.filter((call) => /^Get|^Stat/.test(call.method)).length;

  it('drops a version purged through one replica from all three, and only that version', async () => {
    const all = [await startReplica('a'), await startReplica('b'), await startReplica('c')];
    for (const replica of all) for (const version of ['v1.0.0', 'v1.1.0']) await warm(replica, version);
    const warmReads = storageReads();
    for (const replica of all) expect(await holds(replica, 'v1.0.0')).toBe(true);
    expect(storageReads()).toBe(warmReads);

    await all[0]?.cache.delete(module, 'v1.0.0');
    for (const replica of all) {
      await waitUntil(() => replica.seen.includes('invalidated bus'), { what: `${replica.name} hears it` });
    }
    for (const replica of all) {
      expect(await holds(replica, 'v1.0.0'), replica.name).toBe(false);
      await expect(replica.cache.zip(module, 'v1.0.0')).rejects.toMatchObject({ kind: 'not-found' });
      expect(replica.cache.stats().disk.entries, replica.name).toBe(1);
    }
    // The other version is still served by every replica from its own cache alone.
    const before = storageReads();
    for (const replica of all) await warm(replica, 'v1.1.0');
    expect(storageReads()).toBe(before);
  });

  it('applies at start-up a purge made while a replica was stopped, and keeps the rest of its disk tier', async () => {
    const a = await startReplica('a');
    let c = await startReplica('c');
    for (const version of ['v1.0.0', 'v1.1.0']) {
      await warm(a, version);
      await warm(c, version);
    }
    await stopReplica(c);
    await a.cache.delete(module, 'v1.0.0');
    c = await startReplica('c');
    expect(c.startedWith).toContain('invalidated bus');
    expect(c.startedWith).not.toContain('cleared');
    expect(c.cache.stats().disk.entries).toBe(1);
    const before = storageReads();
    const zip = await c.cache.zip(module, 'v1.1.0');
    expect(sha256(await readAll(zip.stream))).toBe(sha256(zips.get('v1.1.0') ?? Buffer.alloc(0)));
    expect(storageReads()).toBe(before);
    await expect(c.cache.zip(module, 'v1.0.0')).rejects.toMatchObject({ kind: 'not-found' });
  });

  it('drops everything at start-up when the invalidations it missed were trimmed away', async () => {
    const a = await startReplica('a', { maxEntries: 1 });
    let c = await startReplica('c');
    await warm(c, 'v1.1.0');
    await stopReplica(c);
    // Purges of versions nobody holds, enough for Redis to trim whole stream nodes.
    for (let i = 0; i < 300; i++) {
      await a.cache.delete(module, `v0.0.${i}`).catch(() => undefined);
    }
    c = await startReplica('c');
    expect(c.startedWith).toContain('cleared');
    expect(c.cache.stats().disk.entries).toBe(0);
  });

  it('drops everything when the queue Redis comes back without its data', async () => {
    const all = [await startReplica('a'), await startReplica('b')];
    for (const replica of all) await warm(replica, 'v1.1.0');
    await all[0]?.cache.delete(module, 'v1.0.0').catch(() => undefined);
    await redis.restart();
    for (const replica of all) {
      await waitUntil(() => replica.seen.includes('cleared'), {
        what: `${replica.name} drops what it cannot vouch for`,
      });
      expect(replica.cache.stats().disk.entries).toBe(0);
    }
    // And purges reach everyone again afterwards.
    for (const replica of all) await warm(replica, 'v1.1.0');
    await all[0]?.cache.delete(module, 'v1.1.0');
    await waitUntil(() => all[1]?.cache.stats().disk.entries === 0, { what: 'b drops the new purge' });
  });

  it('starts empty without waiting when the queue Redis does not answer, and hears purges once it does', async () => {
    const a = await startReplica('a');
    let c = await startReplica('c');
    await warm(c, 'v1.1.0');
    await stopReplica(c);
    const relay = await startTcpRelay({ targetPort: redis.port });
    try {
      relay.stall();
      c = await startReplica('c', { redisUrl: `redis://127.0.0.1:${relay.port}`, startTimeoutMs: 300 });
      expect(c.startedWith).toContain('cleared');
      expect(c.cache.stats().disk.entries).toBe(0);
      await warm(c, 'v1.1.0');
      relay.resume();
      await a.cache.delete(module, 'v1.1.0');
      await waitUntil(() => c.seen.includes('invalidated bus'), { what: 'c hears the purge' });
      expect(c.cache.stats().disk.entries).toBe(0);
    } finally {
      await stopReplica(c);
      await relay.close();
    }
  });

  it('starts at once when the queue Redis rejects its password, reports it once, and hears purges once it accepts it', async () => {
    const guarded = await startRedisServer({ password: 'the-right-password' });
    try {
      const a = await startReplica('a', {
        redisUrl: `redis://:the-right-password@127.0.0.1:${guarded.port}`,
      });
      const errors: string[] = [];
      const connection = createQueueRedis(`redis://:a-wrong-password@127.0.0.1:${guarded.port}`);
      connections.push(connection);
      let refusals = 0;
      connection.on('error', (error: Error) => (refusals += /^WRONGPASS/.test(error.message) ? 1 : 0));
      const seen: string[] = [];
      const cache = await CachedStorage.open({
        storage: new GrpcStorage({ url: `127.0.0.1:${server.port}`, deadlineMs: 2_000 }),
        bus: new RedisInvalidationBus({
          connection,
          prefix,
          blockMs: 200,
          startTimeoutMs: 60_000,
          onError: (error) => errors.push(error.message),
        }),
        events: {
          invalidated: (origin) => seen.push(`invalidated ${origin}`),
          cleared: () => seen.push('cleared'),
        },
      });
      replicas.push({ name: 'c', cache, dir: root, seen });
      // Started at once (the start-up wait is a minute), though Redis refused every command.
      await waitUntil(() => errors.length > 0, { what: 'the refusal is reported' });
      expect(errors[0]).toMatch(/^WRONGPASS/);
      await cache.info(module, 'v1.1.0');
      // Refused for a while (ioredis retries about once a second by then): the reader, refused as
      // often, reports it once, not at every attempt.
      await waitUntil(() => refusals >= 10, { what: 'ten refused attempts', timeoutMs: 20_000 });
      expect(errors).toHaveLength(2);
      // The password is mended on Redis' side: the replica's reader gets in and hears the next purge.
      const admin = createQueueRedis(`redis://:the-right-password@127.0.0.1:${guarded.port}`);
      connections.push(admin);
      await admin.config('SET', 'requirepass', 'a-wrong-password');
      await waitUntil(() => connection.status === 'ready', { what: 'the replica is let in' });
      await waitUntil(
        async () => {
          await a.cache.delete(module, 'v1.1.0').catch(() => undefined);
          return seen.includes('invalidated bus');
        },
        { what: 'c hears a purge' },
      );
    } finally {
      await guarded.stop();
    }
  });

  it('reports a purge that could not reach the queue Redis, after deleting it from storage', async () => {
    const own = await startRedisServer();
    try {
      const a = await startReplica('a', { redisUrl: own.url });
      await warm(a, 'v1.0.0');
      await own.stop();
      const failure = await a.cache.delete(module, 'v1.0.0').catch((error: unknown) => error);
      expect(isModuleError(failure, 'unavailable')).toBe(true);
      expect(String((failure as Error).message)).toMatch(/purge it again/);
      expect(await backend.exists(module, 'v1.0.0')).toBe(false);
      expect(await holds(a, 'v1.0.0')).toBe(false);
    } finally {
      await own.stop();
    }
  });
});
