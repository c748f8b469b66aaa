import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import {
  isRecyclingReadable,
  MemoryStorage,
  type CallOptions,
  type ModuleStorage,
  type SaveInput,
  type ZipContent,
} from '@modproxy/storage';
import {
  describeStorageCompliance,
  failingStream,
  patternBuffer,
  readAll,
  stalledStream,
} from '@modproxy/storage/compliance';
import { createTempDir, removeDir, waitUntil } from '@modproxy/testing';
import { CachedStorage, type CachedStorageOptions } from './cached-storage';
import type { ContentCacheEvents } from './content-cache-events';
import type { InvalidationBus } from './invalidation-bus';
import { CountingStorage } from './testing/counting-storage';

const KiB = 1024;
const MiB = 1024 * KiB;
const module = 'example.com/cached';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

function version(v: string, zipBytes: number, seed = 1): SaveInput & { zipBytes: Buffer } {
  const zipBytesOf = patternBuffer(zipBytes, seed);
  return {
    module,
    version: v,
    info: Buffer.from(JSON.stringify({ Version: v, Time: '2024-01-02T03:04:05Z' })),
    mod: Buffer.from(`module ${module}\n\ngo 1.22\n`),
    zip: Readable.from([zipBytesOf], { objectMode: false }),
    zipBytes: zipBytesOf,
  };
}

async function saveTo(storage: ModuleStorage, input: SaveInput & { zipBytes: Buffer }): Promise<void> {
  const { zipBytes, ...rest } = input;
  await storage.save({ ...rest, zip: Readable.from([zipBytes], { objectMode: false }) });
}

async function zipBytes(storage: ModuleStorage, v: string): Promise<Buffer> {
  const zip = await storage.zip(module, v);
  const bytes = await readAll(zip.stream);
  expect(bytes.length).toBe(zip.size);
  return bytes;
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

/** A bus with a record of every purge, that never missed one (what a restart with the Redis bus finds). */
function recordingBus(): InvalidationBus {
  return { publish: async () => undefined, subscribe: async () => undefined, close: async () => undefined };
}

/** Counts the events the cache reports, the way the proxy's metrics read them. */
function recordingEvents(): ContentCacheEvents & { seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    read: (file, source) => seen.push(`read ${file} ${source}`),
    evicted: (tier, reason) => seen.push(`evicted ${tier} ${reason}`),
    filled: (tier, result) => seen.push(`filled ${tier} ${result}`),
    fillFailed: (tier, error) => seen.push(`fill failed ${tier} ${error.message}`),
    invalidated: (origin) => seen.push(`invalidated ${origin}`),
    cleared: () => seen.push('cleared'),
  };
}

describeStorageCompliance('content cache (memory and disk tiers) over memory storage', async () => {
  const dir = await createTempDir('content-cache-compliance-');
  const storage = await CachedStorage.open({
    storage: new MemoryStorage(),
    zipMemoryMaxBytes: 1 * KiB,
    disk: { dir, maxBytes: 256 * MiB },
  });
  return {
    storage,
    cleanup: async () => {
      await storage.close();
      await removeDir(dir);
    },
  };
});

describe('CachedStorage', () => {
  let dir: string;
  let backend: MemoryStorage;
  let counting: CountingStorage;
  const opened: CachedStorage[] = [];

  beforeEach(async () => {
    dir = await createTempDir('content-cache-');
    backend = new MemoryStorage();
    counting = new CountingStorage(backend);
  });

  afterEach(async () => {
    while (opened.length > 0) await opened.pop()?.close();
    await removeDir(dir);
  });

  async function cache(options: Partial<CachedStorageOptions> = {}): Promise<CachedStorage> {
    const cached = await CachedStorage.open({
      storage: counting,
      zipMemoryMaxBytes: 4 * KiB,
      disk: { dir, maxBytes: 8 * MiB },
      ...options,
    });
    opened.push(cached);
    return cached;
  }

  it('answers warm info, go.mod and zips without asking storage, byte for byte', async () => {
    const events = recordingEvents();
    const cached = await cache({ events });
    const small = version('v1.0.0', 2 * KiB, 1);
    const large = version('v1.1.0', 1 * MiB, 2);
    await saveTo(backend, small);
    await saveTo(backend, large);

    // Cold: each read goes to storage once.
    expect((await cached.info(module, 'v1.0.0')).equals(small.info)).toBe(true);
    expect((await cached.mod(module, 'v1.0.0')).equals(small.mod)).toBe(true);
    expect((await zipBytes(cached, 'v1.0.0')).equals(small.zipBytes)).toBe(true);
    expect((await zipBytes(cached, 'v1.1.0')).equals(large.zipBytes)).toBe(true);
    expect(counting.reads).toBe(4);

    counting.down = true;
    for (let round = 0; round < 3; round++) {
      expect((await cached.info(module, 'v1.0.0')).equals(small.info)).toBe(true);
      expect((await cached.mod(module, 'v1.0.0')).equals(small.mod)).toBe(true);
      expect(await cached.exists(module, 'v1.1.0')).toBe(true);
      expect((await zipBytes(cached, 'v1.0.0')).equals(small.zipBytes)).toBe(true);
      expect((await zipBytes(cached, 'v1.1.0')).equals(large.zipBytes)).toBe(true);
    }
    expect(counting.reads).toBe(4);
    expect(events.seen.filter((line) => line.startsWith('read'))).toEqual([
      'read info storage',
      'read mod storage',
      'read zip storage',
      'read zip storage',
      ...Array.from({ length: 3 }, () => [
        'read info memory',
        'read mod memory',
        'read zip memory',
        'read zip disk',
      ]).flat(),
    ]);
    expect(events.seen).toContain('filled memory stored');
    expect(events.seen).toContain('filled disk stored');
    expect(cached.stats()).toMatchObject({ memory: { entries: 3 }, disk: { entries: 1, bytes: 1 * MiB } });
  });

  it('serves disk hits as recycling streams of large reads that close their file when done', async () => {
    const cached = await cache();
    const large = version('v1.1.0', 1 * MiB, 2);
    await saveTo(backend, large);
    expect((await zipBytes(cached, 'v1.1.0')).equals(large.zipBytes)).toBe(true);
    const openFiles = async () => (await readdir('/proc/self/fd')).length;
    const before = await openFiles();
    for (let round = 0; round < 20; round++) {
      const zip = await cached.zip(module, 'v1.1.0');
      // The lean HTTP path hands written chunks back to such a stream (no allocation per read).
      expect(isRecyclingReadable(zip.stream)).toBe(true);
      if (round % 2 === 0) expect((await readAll(zip.stream)).equals(large.zipBytes)).toBe(true);
      else zip.stream.destroy();
    }
    // Read to the end or left halfway: every descriptor is closed again.
    await waitUntil(async () => (await openFiles()) <= before, { what: 'the zip files were closed' });
  });

  it('never remembers that a version was missing', async () => {
    const cached = await cache();
    expect(isModuleError(await failure(cached.info(module, 'v1.0.0')), 'not-found')).toBe(true);
    expect(isModuleError(await failure(cached.zip(module, 'v1.0.0')), 'not-found')).toBe(true);
    expect(await cached.exists(module, 'v1.0.0')).toBe(false);
    const v = version('v1.0.0', 100 * KiB);
    await saveTo(cached, v);
    expect(await cached.exists(module, 'v1.0.0')).toBe(true);
    expect((await zipBytes(cached, 'v1.0.0')).equals(v.zipBytes)).toBe(true);
  });

  it('keeps the info and go.mod of a version it saved, so the reads that follow a fetch are hits', async () => {
    const cached = await cache();
    await saveTo(cached, version('v1.0.0', 10 * KiB));
    counting.down = true;
    expect(JSON.parse((await cached.info(module, 'v1.0.0')).toString()).Version).toBe('v1.0.0');
    expect((await cached.mod(module, 'v1.0.0')).toString()).toContain(`module ${module}`);
  });

  it('fills the cache once for concurrent misses of one zip, every reader getting every byte', async () => {
    const cached = await cache();
    const v = version('v2.0.0', 3 * MiB, 7);
    await saveTo(backend, v);
    const reads = await Promise.all(Array.from({ length: 12 }, () => zipBytes(cached, 'v2.0.0')));
    for (const bytes of reads) expect(sha256(bytes)).toBe(sha256(v.zipBytes));
    expect(counting.calls.zip).toBe(1);
    await waitUntil(() => cached.stats().disk.entries === 1, { what: 'the fill is kept' });
    counting.down = true;
    expect(sha256(await zipBytes(cached, 'v2.0.0'))).toBe(sha256(v.zipBytes));
  });

  it('goes on filling for the other readers when one reader leaves', async () => {
    const cached = await cache();
    const v = version('v2.1.0', 2 * MiB, 8);
    await saveTo(backend, v);
    const leaving = await cached.zip(module, 'v2.1.0');
    const staying = await cached.zip(module, 'v2.1.0');
    leaving.stream.destroy();
    expect(sha256(await readAll(staying.stream))).toBe(sha256(v.zipBytes));
    await waitUntil(() => cached.stats().disk.entries === 1, { what: 'the fill is kept' });
    expect(counting.calls.zip).toBe(1);
  });

  it('keeps the disk tier within its byte limit, the least recently used zip going first', async () => {
    const events = recordingEvents();
    const cached = await cache({ disk: { dir, maxBytes: 3 * MiB }, events });
    for (const [i, v] of ['v3.0.0', 'v3.1.0', 'v3.2.0', 'v3.3.0'].entries()) {
      await saveTo(backend, version(v, 1 * MiB, 20 + i));
    }
    for (const v of ['v3.0.0', 'v3.1.0', 'v3.2.0']) await zipBytes(cached, v);
    await waitUntil(() => cached.stats().disk.entries === 3, { what: 'three zips kept' });
    // v3.0.0 is used again, so v3.1.0 is the least recently used when v3.3.0 needs room.
    await zipBytes(cached, 'v3.0.0');
    await zipBytes(cached, 'v3.3.0');
    await waitUntil(() => cached.stats().disk.entries === 3, { what: 'still three zips' });
    expect(cached.stats().disk.bytes).toBeLessThanOrEqual(3 * MiB);
    expect(events.seen).toContain('evicted disk size');
    const before = counting.calls.zip;
    for (const v of ['v3.0.0', 'v3.2.0', 'v3.3.0']) await zipBytes(cached, v);
    expect(counting.calls.zip).toBe(before);
    await zipBytes(cached, 'v3.1.0');
    expect(counting.calls.zip).toBe(before + 1);
  });

  it('keeps the memory tier within its byte limit', async () => {
    const cached = await cache({ memoryMaxBytes: 64 * KiB, zipMemoryMaxBytes: 16 * KiB });
    for (let i = 0; i < 10; i++) {
      await saveTo(backend, version(`v4.${i}.0`, 12 * KiB, 40 + i));
      await zipBytes(cached, `v4.${i}.0`);
      expect(cached.stats().memory.bytes).toBeLessThanOrEqual(64 * KiB);
    }
    expect(cached.stats().memory.entries).toBeLessThan(10);
  });

  it('streams zips that fit no tier straight from storage', async () => {
    const cached = await cache({ disk: { dir, maxBytes: 1 * MiB } });
    const v = version('v5.0.0', 2 * MiB, 50);
    await saveTo(backend, v);
    expect(sha256(await zipBytes(cached, 'v5.0.0'))).toBe(sha256(v.zipBytes));
    expect(sha256(await zipBytes(cached, 'v5.0.0'))).toBe(sha256(v.zipBytes));
    expect(counting.calls.zip).toBe(2);
    expect(cached.stats().disk.entries).toBe(0);
  });

  it('drops a deleted version and publishes the invalidation', async () => {
    const events = recordingEvents();
    const cached = await cache({ events });
    await saveTo(backend, version('v6.0.0', 1 * MiB, 60));
    await cached.info(module, 'v6.0.0');
    await zipBytes(cached, 'v6.0.0');
    await waitUntil(() => cached.stats().disk.entries === 1, { what: 'the zip is kept' });
    await cached.delete(module, 'v6.0.0');
    expect(cached.stats()).toMatchObject({ memory: { entries: 0 }, disk: { entries: 0 } });
    expect(isModuleError(await failure(cached.info(module, 'v6.0.0')), 'not-found')).toBe(true);
    expect(isModuleError(await failure(cached.zip(module, 'v6.0.0')), 'not-found')).toBe(true);
    expect(events.seen).toEqual(
      expect.arrayContaining(['evicted memory invalidated', 'evicted disk invalidated', 'invalidated local']),
    );
    // A version storage no longer has is still dropped everywhere, then reported missing.
    expect(isModuleError(await failure(cached.delete(module, 'v6.0.0')), 'not-found')).toBe(true);
  });

  it('serves a zip being filled when its version is purged, but does not keep it', async () => {
    const stalled = stalledStream(256 * KiB, 70);
    let release: () => void = () => undefined;
    const rest = patternBuffer(512 * KiB, 71);
    const slow: ModuleStorage = Object.assign(Object.create(counting) as ModuleStorage, {
      zip: async (): Promise<ZipContent> => {
        const stream = new Readable({ read() {} });
        stalled.stream.on('data', (chunk: Buffer) => stream.push(chunk));
        release = () => {
          stream.push(rest);
          stream.push(null);
        };
        return { size: 256 * KiB + rest.length, stream };
      },
      delete: async () => undefined,
    });
    const cached = await cache({ storage: slow });
    const reading = await cached.zip(module, 'v7.0.0');
    const bytes = readAll(reading.stream);
    await stalled.waitingForMore;
    await cached.delete(module, 'v7.0.0');
    release();
    expect((await bytes).length).toBe(768 * KiB);
    // The fill ends and is thrown away; nothing of the purged version is kept.
    await waitUntil(async () => (await readdir(join(dir, 'tmp'))).length === 0, { what: 'the fill ended' });
    expect(cached.stats().disk.entries).toBe(0);
    expect((await readdir(join(dir, 'zips'))).length).toBeLessThanOrEqual(1);
  });

  it('fails the readers and keeps nothing when storage sends fewer bytes than it said, or other bytes', async () => {
    const events = recordingEvents();
    const good = patternBuffer(1 * MiB, 80);
    let answer: () => ZipContent = () => ({ size: good.length + 1, stream: Readable.from([good]) });
    const lying: ModuleStorage = Object.assign(Object.create(counting) as ModuleStorage, {
      zip: async (): Promise<ZipContent> => answer(),
    });
    const cached = await cache({ storage: lying, events });
    const short = await cached.zip(module, 'v8.0.0');
    expect(isModuleError(await failure(readAll(short.stream)), 'internal')).toBe(true);
    answer = () => ({
      size: good.length,
      sha256: sha256(Buffer.from('other')),
      stream: Readable.from([good]),
    });
    const other = await cached.zip(module, 'v8.0.0');
    expect(String(await failure(readAll(other.stream)))).toMatch(/SHA-256/);
    await waitUntil(async () => (await readdir(join(dir, 'tmp'))).length === 0, { what: 'fills removed' });
    expect(cached.stats().disk.entries).toBe(0);
    expect(events.seen.filter((line) => line.startsWith('fill failed'))).toHaveLength(2);
    // With the right digest it is kept.
    answer = () => ({ size: good.length, sha256: sha256(good), stream: Readable.from([good]) });
    expect(sha256(await readAll((await cached.zip(module, 'v8.0.0')).stream))).toBe(sha256(good));
    await waitUntil(() => cached.stats().disk.entries === 1, { what: 'the checked zip is kept' });
  });

  it('fails the readers when storage fails mid-zip, and asks storage again next time', async () => {
    let broken = true;
    const good = patternBuffer(1 * MiB, 90);
    const flaky: ModuleStorage = Object.assign(Object.create(counting) as ModuleStorage, {
      zip: async (_m: string, _v: string, _o?: CallOptions): Promise<ZipContent> => ({
        size: good.length,
        stream: broken ? failingStream(300 * KiB, 90) : Readable.from([good]),
      }),
    });
    const cached = await cache({ storage: flaky });
    const first = await cached.zip(module, 'v9.0.0');
    await failure(readAll(first.stream));
    broken = false;
    expect(sha256(await readAll((await cached.zip(module, 'v9.0.0')).stream))).toBe(sha256(good));
  });

  it('survives a restart: what was kept is served with storage stopped, what a crash left is removed', async () => {
    const v = version('v10.0.0', 2 * MiB, 100);
    await saveTo(backend, v);
    const first = await cache({ bus: recordingBus() });
    await zipBytes(first, 'v10.0.0');
    await waitUntil(() => first.stats().disk.entries === 1, { what: 'the zip is kept' });
    await first.close();
    opened.length = 0;

    // A crash mid-fill, and a file cut short under its final name (a disk that lost a write).
    await writeFile(join(dir, 'tmp', 'fill-00000000-0000-0000-0000-000000000000.part'), 'partial');
    const shard = join(dir, 'zips', 'ab');
    const truncated = join(shard, `ab${'0'.repeat(62)}-${1 * MiB}.zip`);
    await mkdir(shard, { recursive: true });
    await writeFile(truncated, patternBuffer(1000, 1));

    counting.down = true;
    const second = await cache({ bus: recordingBus() });
    expect(second.stats().disk).toMatchObject({ entries: 1, bytes: 2 * MiB });
    expect(sha256(await zipBytes(second, 'v10.0.0'))).toBe(sha256(v.zipBytes));
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    expect(await stat(truncated).catch(() => undefined)).toBeUndefined();
    expect(counting.calls.zip).toBe(1);
  });

  it('counts the zips a restart finds within the limit, oldest out first', async () => {
    for (const [i, v] of ['v11.0.0', 'v11.1.0', 'v11.2.0'].entries()) {
      await saveTo(backend, version(v, 1 * MiB, 110 + i));
    }
    const first = await cache({ bus: recordingBus() });
    for (const v of ['v11.0.0', 'v11.1.0', 'v11.2.0']) {
      await zipBytes(first, v);
      await waitUntil(() => first.stats().disk.entries >= 1, { what: 'kept' });
    }
    await waitUntil(() => first.stats().disk.entries === 3, { what: 'three kept' });
    await first.close();
    opened.length = 0;
    const second = await cache({ disk: { dir, maxBytes: 2 * MiB }, bus: recordingBus() });
    expect(second.stats().disk).toMatchObject({ entries: 2, bytes: 2 * MiB });
  });

  it('starts empty after a restart when its bus keeps no record of purges (this process only)', async () => {
    await saveTo(backend, version('v12.0.0', 2 * MiB, 120));
    const first = await cache();
    await zipBytes(first, 'v12.0.0');
    expect(first.stats().disk.entries).toBe(1);
    await first.close();
    opened.length = 0;
    const events = recordingEvents();
    const second = await cache({ events });
    expect(second.stats().disk.entries).toBe(0);
    expect(events.seen).toEqual(['evicted disk cleared', 'cleared']);
  });

  it('goes without a disk tier when its directory cannot be made, and still serves', async () => {
    // A file where the directory should be: as unwritable as a read-only root, whoever runs the test.
    const blocked = join(dir, 'not-a-dir');
    await writeFile(blocked, 'x');
    const seen: string[] = [];
    const cached = await cache({
      disk: { dir: join(blocked, 'cache'), maxBytes: 8 * MiB },
      events: { diskTierUnavailable: (why) => seen.push(why) },
    });
    expect(seen).toEqual([expect.stringContaining('cannot be used')]);
    const v = version('v14.0.0', 1 * MiB, 140);
    await saveTo(backend, v);
    expect(sha256(await zipBytes(cached, 'v14.0.0'))).toBe(sha256(v.zipBytes));
    expect(cached.stats().disk).toMatchObject({ entries: 0, maxBytes: 0 });
  });

  it('leaves a directory another live process uses alone, and goes without a disk tier', async () => {
    const first = await cache({ bus: recordingBus() });
    await saveTo(backend, version('v13.0.0', 2 * MiB, 130));
    await zipBytes(first, 'v13.0.0');
    // Another process on this host holds the directory: the lock names a pid that is alive.
    await first.close();
    opened.length = 0;
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      await writeFile(join(dir, 'owner'), JSON.stringify({ host: hostname(), pid: other.pid, id: 'x' }));
      const seen: string[] = [];
      const second = await cache({
        bus: recordingBus(),
        events: { diskTierUnavailable: (why) => seen.push(why) },
      });
      expect(seen).toEqual([
        expect.stringMatching(new RegExp(`in use by process ${other.pid} on this host`)),
      ]);
      expect(second.stats().disk).toMatchObject({ entries: 0, maxBytes: 0 });
      // Its zips are still there for their owner.
      expect((await readdir(join(dir, 'zips'))).length).toBe(1);
    } finally {
      other.kill();
    }
    // Once its owner is gone, the directory is taken over.
    await waitUntil(() => other.exitCode !== null || other.signalCode !== null, {
      what: 'the other process ended',
    });
    const third = await cache({ bus: recordingBus() });
    expect(third.stats().disk.entries).toBe(1);
  });
});
