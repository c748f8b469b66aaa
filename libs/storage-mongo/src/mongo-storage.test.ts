import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GridFSBucket, MongoClient, type Db } from 'mongodb';
import { afterAll, afterEach, beforeAll, describe, expect, it, inject } from 'vitest';
import { isModuleError, type ErrorKind } from '@modproxy/errors';
import type { SaveInput } from '@modproxy/storage';
import {
  patternBuffer,
  patternStream,
  readAll,
  sha256Hex,
  stalledStream,
} from '@modproxy/storage/compliance';
import { MongoStorage, type MongoStorageOptions } from './mongo-storage';
import { startFerretDb } from './testing/ferretdb-server';

const uri = inject('ferretDbUri');
const HOUR_MS = 60 * 60 * 1000;

let admin: MongoClient;
/** Storages and databases a case made, closed and dropped after it. */
const opened: MongoStorage[] = [];
const databases: string[] = [];

beforeAll(async () => {
  admin = await MongoClient.connect(uri);
});

afterEach(async () => {
  for (const storage of opened.splice(0)) await storage.close();
  for (const database of databases.splice(0)) await admin.db(database).dropDatabase();
});

afterAll(async () => {
  await admin.close();
});

function freshDatabase(): { name: string; db: Db } {
  const name = `mongo_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  databases.push(name);
  return { name, db: admin.db(name) };
}

async function connect(options: Partial<MongoStorageOptions> & { database: string }): Promise<MongoStorage> {
  const storage = await MongoStorage.connect({ uri, ...options });
  opened.push(storage);
  return storage;
}

function input(module: string, version: string, zip: Buffer | Readable, tag = 'original'): SaveInput {
  return {
    module,
    version,
    info: Buffer.from(JSON.stringify({ Version: version, Tag: tag })),
    mod: Buffer.from(`module ${module}\n// ${tag}\n`),
    zip: Buffer.isBuffer(zip) ? Readable.from([zip]) : zip,
  };
}

async function kindOf(promise: Promise<unknown>): Promise<ErrorKind | string> {
  try {
    await promise;
  } catch (error) {
    return isModuleError(error) ? error.kind : `not a ModuleError: ${String(error)}`;
  }
  return 'no error';
}

/** What GridFS holds in the default bucket: file documents and chunk documents. */
async function gridFsCounts(db: Db): Promise<{ files: number; chunks: number }> {
  return {
    files: await db.collection('zips.files').countDocuments(),
    chunks: await db.collection('zips.chunks').countDocuments(),
  };
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('MongoStorage on FerretDB', () => {
  it('leaves no visible version when a save is cut off mid-upload, and cleanupOrphans removes its chunks', async () => {
    const { name, db } = freshDatabase();
    // Small chunks, so the first bytes of the zip reach the server before the "crash".
    const crashing = await MongoStorage.connect({ uri, database: name, chunkSizeBytes: 16 * 1024 });
    const { stream, waitingForMore } = stalledStream(128 * 1024, 3);
    const saving = crashing.save(input('example.com/crash', 'v1.0.0', stream));
    await waitingForMore;
    await eventually(async () => (await gridFsCounts(db)).chunks >= 8, 'the first chunks to be stored');
    // The process "dies": its connection is gone, so the save cannot clean up after itself.
    await crashing.close();
    stream.destroy(new Error('process killed'));
    expect(isModuleError(await saving.catch((e: unknown) => e))).toBe(true);
    const left = await gridFsCounts(db);
    expect(left.chunks, 'chunks left behind by the cut-off upload').toBeGreaterThan(0);
    expect(left.files, 'GridFS never wrote a file document').toBe(0);

    // A restarted process: the version is not there, and connect's cleanup spares young uploads.
    const storage = await connect({ database: name });
    expect(await storage.exists('example.com/crash', 'v1.0.0')).toBe(false);
    expect(await storage.list('example.com/crash')).toEqual([]);
    expect(await kindOf(storage.zip('example.com/crash', 'v1.0.0'))).toBe('not-found');
    expect(await storage.catalog({ pageSize: 10 })).toEqual({ entries: [] });
    expect(await gridFsCounts(db)).toEqual(left);

    expect(await storage.cleanupOrphans({ graceMs: HOUR_MS })).toEqual({
      removedFiles: 0,
      removedPartialUploads: 0,
    });
    expect(await gridFsCounts(db)).toEqual(left);
    expect(await storage.cleanupOrphans({ graceMs: 0 })).toEqual({
      removedFiles: 0,
      removedPartialUploads: 1,
    });
    expect(await gridFsCounts(db)).toEqual({ files: 0, chunks: 0 });

    const zip = patternBuffer(40_000, 4);
    await storage.save(input('example.com/crash', 'v1.0.0', zip));
    expect((await readAll((await storage.zip('example.com/crash', 'v1.0.0')).stream)).equals(zip)).toBe(true);
  });

  it('removes a complete GridFS file that no version references, and never a referenced one', async () => {
    const { name, db } = freshDatabase();
    const storage = await connect({ database: name });
    const kept = patternBuffer(300_000, 5);
    await storage.save(input('example.com/kept', 'v1.0.0', kept));
    // A crash between upload and insert: the zip is in GridFS, the version document never came.
    const bucket = new GridFSBucket(db, { bucketName: 'zips' });
    const upload = bucket.openUploadStream('example.com/lost@v1.0.0.zip', {
      metadata: { module: 'example.com/lost', version: 'v1.0.0', startedAt: new Date() },
    });
    await pipeline(Readable.from([patternBuffer(300_000, 6)]), upload);
    expect((await gridFsCounts(db)).files).toBe(2);
    expect(await storage.exists('example.com/lost', 'v1.0.0')).toBe(false);

    expect(await storage.cleanupOrphans()).toEqual({ removedFiles: 0, removedPartialUploads: 0 });
    expect((await gridFsCounts(db)).files).toBe(2);
    expect(await storage.cleanupOrphans({ graceMs: 0 })).toEqual({
      removedFiles: 1,
      removedPartialUploads: 0,
    });
    expect(await db.collection('zips.files').countDocuments({ _id: upload.id })).toBe(0);
    expect(await db.collection('zips.chunks').countDocuments({ files_id: upload.id })).toBe(0);
    expect((await readAll((await storage.zip('example.com/kept', 'v1.0.0')).stream)).equals(kept)).toBe(true);
    // And connect's own sweep (with grace 0) spares what is referenced, too.
    await connect({ database: name, orphanGraceMs: 0 });
    expect((await readAll((await storage.zip('example.com/kept', 'v1.0.0')).stream)).equals(kept)).toBe(true);
  });

  it('refuses a duplicate save with already-exists, keeps the original and removes the loser zip', async () => {
    const { name, db } = freshDatabase();
    const storage = await connect({ database: name });
    const original = patternBuffer(600_000, 7);
    await storage.save(input('example.com/dup', 'v1.0.0', original, 'original'));
    const stored = await gridFsCounts(db);

    expect(
      await kindOf(storage.save(input('example.com/dup', 'v1.0.0', patternBuffer(10, 8), 'second'))),
    ).toBe('already-exists');
    expect(JSON.parse((await storage.info('example.com/dup', 'v1.0.0')).toString())).toEqual({
      Version: 'v1.0.0',
      Tag: 'original',
    });
    expect((await readAll((await storage.zip('example.com/dup', 'v1.0.0')).stream)).equals(original)).toBe(
      true,
    );
    expect(await gridFsCounts(db)).toEqual(stored);

    // Racing saves all pass the early check; the unique index picks one and the others clean up.
    const racers = Array.from({ length: 5 }, (_, i) => patternBuffer(300_000 + i, 20 + i));
    const results = await Promise.allSettled(
      racers.map((zip, i) => storage.save(input('example.com/race', 'v1.0.0', zip, `racer ${i}`))),
    );
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(winners).toHaveLength(1);
    for (const r of results)
      if (r.status === 'rejected') expect(isModuleError(r.reason, 'already-exists')).toBe(true);
    const winner = racers[winners[0] ?? -1] as Buffer;
    expect((await readAll((await storage.zip('example.com/race', 'v1.0.0')).stream)).equals(winner)).toBe(
      true,
    );
    expect(await db.collection('zips.files').countDocuments()).toBe(stored.files + 1);
    expect(await db.collection('zips.chunks').countDocuments()).toBe(
      stored.chunks + Math.ceil(winner.length / (255 * 1024)),
    );
  });

  it('leaves nothing in GridFS when a zip fails its digest or its save is aborted midway', async () => {
    const { name, db } = freshDatabase();
    const storage = await connect({ database: name, chunkSizeBytes: 8 * 1024 });
    await storage.save(input('example.com/first', 'v1.0.0', patternBuffer(20_000, 14)));
    const before = await gridFsCounts(db);

    // Many chunks reach GridFS before the digest is known at the end.
    const zip = patternStream(100_000, 9, { chunkSize: 4096 });
    const mismatch = storage.save({
      ...input('example.com/sum', 'v1.0.0', zip),
      zipSha256: sha256Hex(Buffer.from('other')),
    });
    expect(await kindOf(mismatch)).toBe('invalid-argument');
    expect(await gridFsCounts(db)).toEqual(before);

    const { stream, waitingForMore } = stalledStream(64 * 1024, 15);
    const controller = new AbortController();
    const aborted = storage.save(input('example.com/abort', 'v1.0.0', stream), { signal: controller.signal });
    await waitingForMore;
    await eventually(
      async () => (await gridFsCounts(db)).chunks >= before.chunks + 8,
      'chunks of the aborted save',
    );
    controller.abort();
    expect(await kindOf(aborted)).toBe('cancelled');
    expect(await gridFsCounts(db)).toEqual(before);
    expect(await storage.exists('example.com/sum', 'v1.0.0')).toBe(false);
    expect(await storage.exists('example.com/abort', 'v1.0.0')).toBe(false);
  });

  it('stores the version document with size, digest and zip reference, and delete removes the zip', async () => {
    const { name, db } = freshDatabase();
    const storage = await connect({ database: name });
    const zip = patternBuffer(70_000, 10);
    await storage.save({ ...input('example.com/doc', 'v1.2.3', zip), zipSha256: sha256Hex(zip) });
    const doc = await db.collection('versions').findOne({ module: 'example.com/doc', version: 'v1.2.3' });
    expect(doc).toMatchObject({ zipSize: zip.length, zipSha256: sha256Hex(zip) });
    const file = await db.collection('zips.files').findOne({ _id: doc?.['zipFileId'] });
    expect(file).toMatchObject({
      length: zip.length,
      metadata: { module: 'example.com/doc', version: 'v1.2.3' },
    });

    // Another process (a new connection) sees the same content.
    const other = await connect({ database: name });
    expect((await readAll((await other.zip('example.com/doc', 'v1.2.3')).stream)).equals(zip)).toBe(true);

    await storage.delete('example.com/doc', 'v1.2.3');
    expect(await gridFsCounts(db)).toEqual({ files: 0, chunks: 0 });
    expect(await db.collection('versions').countDocuments()).toBe(0);
  });

  it('keeps databases and buckets apart', async () => {
    const a = freshDatabase();
    const b = freshDatabase();
    const inA = await connect({ database: a.name });
    const inB = await connect({ database: b.name });
    const otherBucket = await connect({ database: a.name, bucketName: 'other' });
    await inA.save(input('example.com/apart', 'v1.0.0', patternBuffer(1000, 11)));
    expect(await inB.exists('example.com/apart', 'v1.0.0')).toBe(false);
    expect(await a.db.collection('zips.files').countDocuments()).toBe(1);
    await otherBucket.save(input('example.com/apart', 'v2.0.0+incompatible', patternBuffer(1000, 12)));
    expect(await a.db.collection('other.files').countDocuments()).toBe(1);
    // The other bucket's zip went there only, and the other database saw neither.
    expect(await a.db.collection('zips.files').countDocuments()).toBe(1);
    expect(await b.db.collection('zips.files').countDocuments()).toBe(0);
    expect(await b.db.collection('other.files').countDocuments()).toBe(0);
    expect(await inB.list('example.com/apart')).toEqual([]);
  });

  it('fails unavailable when no server answers', async () => {
    // Port 1 on loopback: nothing listens there.
    const error = await MongoStorage.connect({
      uri: 'mongodb://127.0.0.1:1/',
      serverSelectionTimeoutMs: 500,
    }).catch((e: unknown) => e);
    expect(isModuleError(error) ? error.kind : error).toBe('unavailable');
  });

  it('rejects a malformed connection string with invalid-argument', async () => {
    expect(await kindOf(MongoStorage.connect({ uri: 'not-a-mongodb-uri' }))).toBe('invalid-argument');
  });

  it('does not repeat the user name of a connection string the driver rejects', async () => {
    const error = await MongoStorage.connect({ uri: 'mongodb://dave/ops:davepw@127.0.0.1:1/' }).catch(
      (e: unknown) => e,
    );
    expect(isModuleError(error, 'invalid-argument')).toBe(true);
    expect((error as Error).message).toBe('MongoDB: Username contains unescaped characters');
  });

  it('answers ping while the server runs, and fails readiness and reads with unavailable once it stops', async () => {
    const server = await startFerretDb({ postgresUrl: inject('postgresUrl') });
    try {
      const storage = await MongoStorage.connect({ uri: server.uri, serverSelectionTimeoutMs: 1_000 });
      opened.push(storage);
      await storage.ping();
      await storage.save(input('example.com/ready', 'v1.0.0', patternBuffer(1000, 13)));
      expect(await storage.exists('example.com/ready', 'v1.0.0')).toBe(true);

      await server.stop();
      expect(await kindOf(storage.ping())).toBe('unavailable');
      expect(await kindOf(storage.ping())).toBe('unavailable');
      expect(await kindOf(storage.exists('example.com/ready', 'v1.0.0'))).toBe('unavailable');
      expect(await kindOf(storage.list('example.com/ready'))).toBe('unavailable');
    } finally {
      await server.stop();
    }
  });

  it('refuses calls after close with failed-precondition', async () => {
    const { name } = freshDatabase();
    const storage = await MongoStorage.connect({ uri, database: name });
    await storage.close();
    expect(await kindOf(storage.exists('example.com/closed', 'v1.0.0'))).toBe('failed-precondition');
    expect(await kindOf(storage.ping())).toBe('failed-precondition');
  });
});

describe('reading zips', () => {
  async function drain(promise: Promise<{ stream: Readable }>): Promise<Buffer> {
    const { stream } = await promise;
    const parts: Buffer[] = [];
    for await (const part of stream) parts.push(part as Buffer);
    return Buffer.concat(parts);
  }

  it('streams a zip of many chunks back byte for byte', async () => {
    const { name } = freshDatabase();
    const storage = await connect({ database: name, chunkSizeBytes: 1024 });
    const zip = Buffer.from(Array.from({ length: 50_000 }, (_, i) => i % 251));
    await storage.save(input('example.test/chunks', 'v1.0.0', zip));
    expect((await drain(storage.zip('example.test/chunks', 'v1.0.0'))).equals(zip)).toBe(true);
  });

  it('fails the stream instead of serving a zip with a chunk missing', async () => {
    const { name, db } = freshDatabase();
    const storage = await connect({ database: name, chunkSizeBytes: 1024 });
    await storage.save(input('example.test/chunks', 'v1.0.0', Buffer.alloc(10_000, 7)));
    await db.collection('zips.chunks').deleteOne({ n: 3 });
    await expect(drain(storage.zip('example.test/chunks', 'v1.0.0'))).rejects.toMatchObject({
      kind: 'internal',
    });
  });

  it('fails the stream instead of serving a zip whose last chunk is gone', async () => {
    const { name, db } = freshDatabase();
    const storage = await connect({ database: name, chunkSizeBytes: 1024 });
    await storage.save(input('example.test/chunks', 'v1.0.0', Buffer.alloc(10_000, 7)));
    await db.collection('zips.chunks').deleteOne({ n: 9 });
    await expect(drain(storage.zip('example.test/chunks', 'v1.0.0'))).rejects.toMatchObject({
      kind: 'internal',
    });
  });
});
