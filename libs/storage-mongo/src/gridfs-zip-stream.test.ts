import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  Long,
  MongoClient,
  type CommandStartedEvent,
  type CommandSucceededEvent,
  type Db,
  type Document,
} from 'mongodb';
import { afterEach, beforeAll, afterAll, describe, expect, inject, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { patternBuffer } from '@modproxy/storage/compliance';
import { waitUntil } from '@modproxy/testing';
import { MongoStorage } from './mongo-storage';

const uri = inject('ferretDbUri');
const CHUNKS = 'zips.chunks';

let admin: MongoClient;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  admin = await MongoClient.connect(uri);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await admin.close();
});

/** What the storage's own client sent and got back for the chunks collection. */
interface Traffic {
  started: CommandStartedEvent[];
  /** Chunk documents the server has handed over so far. */
  fetched(): number;
  /** The reply to the first `find` on the chunks collection. */
  firstFind(): Document | undefined;
}

/** A MongoStorage on a fresh database, whose client reports every command it sends. */
async function monitoredStorage(
  chunkSizeBytes: number,
): Promise<{ storage: MongoStorage; client: MongoClient; db: Db; traffic: Traffic }> {
  const database = `zipread_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const client = new MongoClient(uri, { monitorCommands: true });
  await client.connect();
  const storage = await MongoStorage.connect({ uri, client, database, chunkSizeBytes });
  cleanups.push(async () => {
    await storage.close();
    await client.close();
    await admin.db(database).dropDatabase();
  });
  const started: CommandStartedEvent[] = [];
  const chunkRequests = new Set<number>();
  let fetched = 0;
  let firstFind: Document | undefined;
  client.on('commandStarted', (event) => {
    const target = event.command[event.commandName];
    const collection = event.commandName === 'getMore' ? event.command['collection'] : target;
    if (collection !== CHUNKS) return;
    started.push(event);
    if (event.commandName === 'find' || event.commandName === 'getMore') chunkRequests.add(event.requestId);
  });
  client.on('commandSucceeded', (event: CommandSucceededEvent) => {
    if (!chunkRequests.has(event.requestId)) return;
    const cursor = (event.reply as { cursor?: { firstBatch?: unknown[]; nextBatch?: unknown[] } }).cursor;
    if (event.commandName === 'find') firstFind ??= event.reply as Document;
    fetched += (cursor?.firstBatch ?? cursor?.nextBatch ?? []).length;
  });
  return {
    storage,
    client,
    db: admin.db(database),
    traffic: { started, fetched: () => fetched, firstFind: () => firstFind },
  };
}

function commands(traffic: Traffic, name: string): CommandStartedEvent[] {
  return traffic.started.filter((event) => event.commandName === name);
}

async function save(storage: MongoStorage, zip: Buffer): Promise<void> {
  await storage.save({
    module: 'example.test/zipread',
    version: 'v1.0.0',
    info: Buffer.from('{"Version":"v1.0.0"}'),
    mod: Buffer.from('module example.test/zipread\n'),
    zip: Readable.from([zip]),
  });
}

async function open(storage: MongoStorage): Promise<Readable> {
  return (await storage.zip('example.test/zipread', 'v1.0.0')).stream;
}

describe('reading a zip from GridFS', () => {
  it('reads every chunk through one cursor, a few chunks per round trip', async () => {
    const { storage, traffic } = await monitoredStorage(1024);
    const zip = patternBuffer(40_000, 31);
    await save(storage, zip);
    traffic.started.length = 0;

    const parts: Buffer[] = [];
    for await (const part of await open(storage)) parts.push(part as Buffer);

    expect(Buffer.concat(parts).equals(zip)).toBe(true);
    const finds = commands(traffic, 'find');
    expect(finds).toHaveLength(1);
    expect(finds[0]?.command).toMatchObject({ filter: { files_id: expect.anything() }, batchSize: 4 });
    const sort: unknown = finds[0]?.command['sort'];
    expect(sort instanceof Map ? Object.fromEntries(sort) : sort).toEqual({ n: 1 });
    const getMores = commands(traffic, 'getMore');
    expect(getMores.length).toBeGreaterThan(0);
    // 40 chunks, 4 per batch: the first batch came with the find.
    expect(getMores.length).toBeLessThanOrEqual(10);
    for (const getMore of getMores) expect(getMore.command['batchSize']).toBe(4);
  });

  it('asks for the next batch only when the reader has taken the one before', async () => {
    const chunkSize = 64 * 1024;
    const { storage, client, traffic } = await monitoredStorage(chunkSize);
    const zip = patternBuffer(20 * chunkSize, 32);
    await save(storage, zip);
    traffic.started.length = 0;

    let deliveredBytes = 0;
    /** At each getMore: how many fetched chunks the reader had not taken yet. */
    const aheadOfReader: number[] = [];
    const stream = await open(storage);
    const onGetMore = (event: CommandStartedEvent) => {
      if (event.commandName === 'getMore' && event.command['collection'] === CHUNKS)
        aheadOfReader.push(traffic.fetched() - Math.floor(deliveredBytes / chunkSize));
    };
    client.on('commandStarted', onGetMore);
    try {
      const parts: Buffer[] = [];
      for await (const part of stream) {
        parts.push(part as Buffer);
        deliveredBytes += (part as Buffer).length;
        // A slow reader: two round trips per chunk, time enough for an eager reader to fetch ahead.
        await storage.ping();
        await storage.ping();
      }
      expect(Buffer.concat(parts).equals(zip)).toBe(true);
    } finally {
      client.off('commandStarted', onGetMore);
    }
    expect(aheadOfReader.length).toBeGreaterThanOrEqual(4);
    // At most one chunk waits in the stream's buffer; the rest of the batch is with the reader.
    for (const ahead of aheadOfReader) expect(ahead).toBeLessThanOrEqual(1);
  });

  it('picks up at the next chunk when the server drops the cursor of a slow reader', async () => {
    const { storage, db, traffic } = await monitoredStorage(1024);
    const zip = patternBuffer(40_000, 33);
    await save(storage, zip);
    traffic.started.length = 0;

    const stream = await open(storage);
    const reader = stream[Symbol.asyncIterator]();
    const first = await reader.next();
    const parts: Buffer[] = [first.value as Buffer];
    // What MongoDB does to a cursor left idle for 10 minutes, done at once.
    const cursorId = (traffic.firstFind()?.['cursor'] as { id?: number | Long } | undefined)?.id ?? 0;
    const killed = await db.command({ killCursors: CHUNKS, cursors: [Long.fromValue(cursorId)] });
    expect(killed['cursorsKilled']).toHaveLength(1);
    for (let next = await reader.next(); !next.done; next = await reader.next())
      parts.push(next.value as Buffer);

    expect(Buffer.concat(parts).equals(zip)).toBe(true);
    const finds = commands(traffic, 'find');
    expect(finds).toHaveLength(2);
    const resumedAt = (finds[1]?.command['filter'] as { n?: { $gte?: number } }).n?.$gte;
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThan(40);
  });

  it('fails the stream instead of serving a zip with a chunk too many', async () => {
    const { storage, db } = await monitoredStorage(1024);
    await save(storage, Buffer.alloc(10_000, 7));
    const last = await db.collection(CHUNKS).findOne({ n: 9 });
    await db.collection(CHUNKS).insertOne({ files_id: last?.['files_id'], n: 10, data: last?.['data'] });
    const failure = await (async () => {
      for await (const part of await open(storage)) void part;
    })().catch((error: unknown) => error);
    expect(isModuleError(failure, 'internal')).toBe(true);
    expect((failure as Error).message).toMatch(/10000 expected/);
  });

  it('fetches nothing for a reader that goes away unread, and closes the cursor of one that stops halfway', async () => {
    const { storage, traffic } = await monitoredStorage(1024);
    await save(storage, patternBuffer(40_000, 34));
    traffic.started.length = 0;

    (await open(storage)).destroy();
    await storage.ping();
    expect(commands(traffic, 'find')).toHaveLength(0);

    const stream = await open(storage);
    await stream[Symbol.asyncIterator]().next();
    expect(commands(traffic, 'find')).toHaveLength(1);
    stream.destroy();
    await waitUntil(() => commands(traffic, 'killCursors').length === 1, {
      what: 'the cursor of the abandoned read to be killed',
    });
  });
});
