import { readdir, writeFile } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { MemoryStorage, type CallOptions, type ZipContent } from '@modproxy/storage';
import { patternBuffer, patternSha256, patternStream, streamDigest } from '@modproxy/storage/compliance';
import { createTempDir, removeDir, waitUntil } from '@modproxy/testing';
import { GrpcStorage } from './grpc-storage';
import { startStorageGrpcServer, type StorageGrpcServer } from './storage-grpc-server';

const MiB = 1024 * 1024;
const module = 'example.com/shared/zip';
const SIZE = 6 * MiB;

/** A real MemoryStorage that counts zip reads and can hand out zips whose bytes the test releases. */
class CountingStorage extends MemoryStorage {
  zipReads = 0;
  /** When set, zip streams send the first MiB, then wait for the test to call `release`. */
  gate: PassThrough | undefined;

  override async zip(name: string, version: string, options?: CallOptions): Promise<ZipContent> {
    this.zipReads += 1;
    const content = await super.zip(name, version, options);
    if (!this.gate) return content;
    return { size: content.size, stream: this.gate };
  }
}

function readFully(stream: Readable): Promise<{ sha256: string; size: number }> {
  return streamDigest(stream);
}

describe('concurrent zip reads through GrpcStorage', () => {
  let backing: CountingStorage;
  let server: StorageGrpcServer;
  let storage: GrpcStorage;
  let spoolDir: string;
  let expected: { sha256: string; size: number };

  beforeEach(async () => {
    backing = new CountingStorage();
    server = await startStorageGrpcServer({ storage: backing, port: 0 });
    spoolDir = await createTempDir('zip-spool-');
    storage = new GrpcStorage({ url: `127.0.0.1:${server.port}`, zipSpoolDir: spoolDir });
    await storage.save({
      module,
      version: 'v1.0.0',
      info: Buffer.from('{"Version":"v1.0.0"}'),
      mod: Buffer.from(`module ${module}\n`),
      zip: patternStream(SIZE, 9),
    });
    expected = { sha256: await patternSha256(SIZE, 9), size: SIZE };
  });

  afterEach(async () => {
    await storage.close();
    await server.close();
    await backing.close();
    await removeDir(spoolDir);
  });

  it('share one read of storage, and every reader gets every byte', async () => {
    const zips = await Promise.all(Array.from({ length: 20 }, () => storage.zip(module, 'v1.0.0')));
    expect(zips.every((zip) => zip.size === SIZE)).toBe(true);
    const digests = await Promise.all(zips.map((zip) => readFully(zip.stream)));
    for (const digest of digests) expect(digest).toEqual(expected);
    expect(backing.zipReads).toBe(1);
    // The spool has no name: nothing is ever left in its directory.
    expect(await readdir(spoolDir)).toEqual([]);

    // Once the download is over, the next read is a new one.
    expect(await readFully((await storage.zip(module, 'v1.0.0')).stream)).toEqual(expected);
    expect(backing.zipReads).toBe(2);
  });

  it('let a reader finish while another has not read a byte, and a late reader start from the first byte', async () => {
    backing.gate = new PassThrough();
    const gate = backing.gate;
    const [fast, slow] = await Promise.all([storage.zip(module, 'v1.0.0'), storage.zip(module, 'v1.0.0')]);
    gate.write(patternBuffer(SIZE, 9).subarray(0, MiB));
    const late = await storage.zip(module, 'v1.0.0');
    gate.end(patternBuffer(SIZE, 9).subarray(MiB));
    expect(await readFully(fast.stream)).toEqual(expected);
    expect(slow.stream.readableLength).toBe(0);
    expect(await readFully(late.stream)).toEqual(expected);
    expect(await readFully(slow.stream)).toEqual(expected);
    expect(backing.zipReads).toBe(1);
  });

  it('go on for the others when one reader leaves, and stop the download when the last one does', async () => {
    backing.gate = new PassThrough();
    const gate = backing.gate;
    const controller = new AbortController();
    const [leaving, staying] = await Promise.all([
      storage.zip(module, 'v1.0.0', { signal: controller.signal }),
      storage.zip(module, 'v1.0.0'),
    ]);
    gate.write(patternBuffer(SIZE, 9).subarray(0, MiB));
    controller.abort();
    const left = await readFully(leaving.stream).catch((error: unknown) => error);
    expect(isModuleError(left, 'cancelled'), String(left)).toBe(true);
    gate.end(patternBuffer(SIZE, 9).subarray(MiB));
    expect(await readFully(staying.stream)).toEqual(expected);

    backing.gate = new PassThrough();
    const alone = await storage.zip(module, 'v1.0.0');
    backing.gate.write(patternBuffer(MiB, 1));
    alone.stream.destroy();
    // The server's read of storage is cancelled with the last reader.
    await waitUntil(() => backing.gate?.destroyed === true, { what: 'the backend stream was destroyed' });
    backing.gate = undefined;
    expect(await readFully((await storage.zip(module, 'v1.0.0')).stream)).toEqual(expected);
  });

  it('fail every reader with the kind storage reported', async () => {
    const missing = await Promise.allSettled([storage.zip(module, 'v9.0.0'), storage.zip(module, 'v9.0.0')]);
    for (const result of missing) {
      expect(result.status === 'rejected' && isModuleError(result.reason, 'not-found')).toBe(true);
    }
  });

  it('fail with internal, not a crash, when the spool cannot be made', async () => {
    // A missing spool directory is made; one under a regular file cannot be, not even by root.
    await writeFile(`${spoolDir}/a-file`, '');
    const nowhere = new GrpcStorage({
      url: `127.0.0.1:${server.port}`,
      zipSpoolDir: `${spoolDir}/a-file/spool`,
    });
    try {
      const error = await nowhere.zip(module, 'v1.0.0').catch((e: unknown) => e);
      expect(isModuleError(error, 'internal'), String(error)).toBe(true);
      expect((error as Error).message).not.toContain(spoolDir);
    } finally {
      await nowhere.close();
    }
  });
});
