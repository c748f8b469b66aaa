import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { Server, ServerCredentials, status, type ServerWritableStream } from '@grpc/grpc-js';
import { storageV1 } from '@modproxy/contracts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError, ModuleError, type ErrorKind } from '@modproxy/errors';
import {
  DiskStorage,
  MemoryStorage,
  type CallOptions,
  type CatalogOptions,
  type CatalogPage,
  type IndexOptions,
  type IndexPage,
  type ModuleStorage,
  type SaveInput,
  type ZipContent,
} from '@modproxy/storage';
import {
  patternSha256,
  patternStream,
  readAll,
  stalledStream,
  streamDigest,
} from '@modproxy/storage/compliance';
import { waitUntil } from '@modproxy/testing';
import { GrpcStorage, type GrpcStorageOptions } from './grpc-storage';
import { startStorageGrpcServer, type StorageGrpcServer } from './storage-grpc-server';

const MiB = 1024 * 1024;
const module = 'example.com/grpc/transport';

function input(version: string, zip: Readable, extra: Partial<SaveInput> = {}): SaveInput {
  return {
    module,
    version,
    info: Buffer.from(JSON.stringify({ Version: version, Time: '2024-01-02T03:04:05Z' })),
    mod: Buffer.from(`module ${module}\n`),
    zip,
    ...extra,
  };
}

async function failureOf(promise: Promise<unknown>): Promise<ModuleError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ModuleError) return error;
    throw error;
  }
  throw new Error('expected a failure, got success');
}

async function expectKind(promise: Promise<unknown>, kind: ErrorKind): Promise<ModuleError> {
  const error = await failureOf(promise);
  expect(isModuleError(error, kind), `${error.kind}: ${error.message}`).toBe(true);
  return error;
}

/** Polls until `check` holds, for effects the server finishes after the client has its answer. */
function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  return waitUntil(check, { what, intervalMs: 20 });
}

/** Highest resident set size seen while `work` runs, above what it was before. */
async function peakRssGrowth(work: () => Promise<void>): Promise<number> {
  const before = process.memoryUsage.rss();
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  try {
    await work();
  } finally {
    clearInterval(sampler);
  }
  return Math.max(peak, process.memoryUsage.rss()) - before;
}

interface Harness {
  backing: ModuleStorage;
  server: StorageGrpcServer;
  client(options?: Partial<GrpcStorageOptions>): GrpcStorage;
  close(): Promise<void>;
}

async function serve(backing: ModuleStorage, token?: string): Promise<Harness> {
  const server = await startStorageGrpcServer({ storage: backing, port: 0, ...(token ? { token } : {}) });
  const clients: GrpcStorage[] = [];
  return {
    backing,
    server,
    client(options = {}) {
      const client = new GrpcStorage({
        url: `127.0.0.1:${server.port}`,
        ...(token ? { token } : {}),
        ...options,
      });
      clients.push(client);
      return client;
    },
    async close() {
      await Promise.all(clients.map((client) => client.close()));
      await server.close();
      await backing.close();
    },
  };
}

describe('GrpcStorage → server → DiskStorage', () => {
  let root: string;
  let harness: Harness;
  let storage: GrpcStorage;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'modproxy-grpc-'));
    harness = await serve(await DiskStorage.open({ root: join(root, 'store') }));
    storage = harness.client();
  });

  afterEach(async () => {
    await harness.close();
    await rm(root, { recursive: true, force: true });
  });

  it('streams a 200 MiB zip up and down while client and server memory stays flat', async () => {
    const size = 200 * MiB;
    const seed = 2024;
    const sha256 = await patternSha256(size, seed);
    // A small round trip first, so one-off allocations (connection, code paths) are not counted.
    await storage.save(input('v0.1.0', patternStream(4 * MiB, 1)));
    await streamDigest((await storage.zip(module, 'v0.1.0')).stream);

    const uploadGrowth = await peakRssGrowth(() =>
      storage.save(
        input('v1.0.0', patternStream(size, seed, { chunkSize: 256 * 1024 }), { zipSha256: sha256 }),
      ),
    );
    let downloaded: { sha256: string; size: number } | undefined;
    const downloadGrowth = await peakRssGrowth(async () => {
      const zip = await storage.zip(module, 'v1.0.0');
      expect(zip.size).toBe(size);
      downloaded = await streamDigest(zip.stream);
    });

    expect(downloaded).toEqual({ sha256, size });
    // Client and server share this process: buffering the zip on either side would grow it
    // by 200 MiB or more. Streaming keeps a few MiB of messages in flight, plus the garbage of
    // per-message copies that the garbage collector has not yet reclaimed (measured: 10-65 MiB).
    expect(uploadGrowth, `upload grew rss by ${(uploadGrowth / MiB).toFixed(1)} MiB`).toBeLessThan(size / 2);
    expect(downloadGrowth, `download grew rss by ${(downloadGrowth / MiB).toFixed(1)} MiB`).toBeLessThan(
      size / 2,
    );
  }, 300_000);

  it('rejects a zip that does not match its declared SHA-256 and stores nothing', async () => {
    const wrong = await patternSha256(3 * MiB, 2);
    const error = await expectKind(
      storage.save(input('v1.0.0', patternStream(3 * MiB, 1), { zipSha256: wrong })),
      'invalid-argument',
    );
    expect(error.message).toMatch(/SHA-256/);
    expect(await harness.backing.exists(module, 'v1.0.0')).toBe(false);
    expect(await storage.list(module)).toEqual([]);
    // Nothing half-written blocks a correct save afterwards.
    await storage.save(
      input('v1.0.0', patternStream(3 * MiB, 1), { zipSha256: await patternSha256(3 * MiB, 1) }),
    );
    expect(await storage.list(module)).toEqual(['v1.0.0']);
  });

  it('leaves nothing, not even work files, when the client aborts an upload halfway', async () => {
    const { stream, waitingForMore } = stalledStream(3 * MiB, 7);
    const controller = new AbortController();
    const saving = storage.save(input('v1.0.0', stream), { signal: controller.signal });
    await waitingForMore;
    // Let the first megabytes reach the server, so it is really midway.
    await eventually(
      async () => (await readdir(join(root, 'store', '.tmp'))).length > 0,
      'the server started storing',
    );
    controller.abort();
    await expectKind(saving, 'cancelled');

    await eventually(
      async () => (await readdir(join(root, 'store', '.tmp'))).length === 0,
      'the server discarded the partial upload',
    );
    expect(await harness.backing.exists(module, 'v1.0.0')).toBe(false);
    expect(await harness.backing.list(module)).toEqual([]);
    await storage.save(input('v1.0.0', patternStream(MiB, 8)));
    expect(await storage.exists(module, 'v1.0.0')).toBe(true);
  });

  it('lets one of two concurrent uploads of a version win and answers the other ALREADY_EXISTS', async () => {
    const size = 8 * MiB;
    const results = await Promise.allSettled([
      storage.save(input('v2.0.0', patternStream(size, 21, { interleave: true }))),
      harness.client().save(input('v2.0.0', patternStream(size, 22, { interleave: true }))),
    ]);
    const won = results.findIndex((result) => result.status === 'fulfilled');
    const lost = results.find((result) => result.status === 'rejected');
    expect(won).toBeGreaterThanOrEqual(0);
    expect(lost && lost.status === 'rejected' && isModuleError(lost.reason, 'already-exists')).toBe(true);
    const stored = await streamDigest((await storage.zip(module, 'v2.0.0')).stream);
    expect(stored).toEqual({ sha256: await patternSha256(size, won === 0 ? 21 : 22), size });
  });

  it('fails a zip download whose reader gives up, without harm to later calls', async () => {
    await storage.save(input('v1.0.0', patternStream(16 * MiB, 3)));
    const zip = await storage.zip(module, 'v1.0.0');
    const first = await new Promise<Buffer>((resolve) => zip.stream.once('data', resolve));
    expect(first.length).toBeGreaterThan(0);
    zip.stream.destroy();
    const again = await storage.zip(module, 'v1.0.0');
    expect(await streamDigest(again.stream)).toEqual({
      sha256: await patternSha256(16 * MiB, 3),
      size: 16 * MiB,
    });
  });
});

/**
 * A real MemoryStorage whose reads can be made to hang until their caller gives up, to see
 * deadlines and cancellations reach the backend through the transport.
 */
class StallingStorage implements ModuleStorage {
  readonly inner = new MemoryStorage();
  stall = false;
  /** Zip streams send this many bytes, then stall. */
  zipStallAfter: number | undefined;
  /** Calls that reached the backend and hang there now. */
  hanging = 0;
  readonly aborts: unknown[] = [];

  exists(module: string, version: string, options?: CallOptions): Promise<boolean> {
    return this.inner.exists(module, version, options);
  }
  async info(module: string, version: string, options: CallOptions = {}): Promise<Buffer> {
    if (this.stall) await this.hang(options.signal);
    return this.inner.info(module, version, options);
  }
  mod(module: string, version: string, options?: CallOptions): Promise<Buffer> {
    return this.inner.mod(module, version, options);
  }
  async zip(module: string, version: string, options: CallOptions = {}): Promise<ZipContent> {
    const content = await this.inner.zip(module, version, options);
    if (this.zipStallAfter === undefined) return content;
    const bytes = (await readAll(content.stream)).subarray(0, this.zipStallAfter);
    let sent = false;
    const stream = new Readable({
      read() {
        if (!sent) this.push(bytes);
        sent = true;
      },
    });
    return { size: content.size, stream };
  }
  save(input: SaveInput, options?: CallOptions): Promise<void> {
    return this.inner.save(input, options);
  }
  list(module: string, options?: CallOptions): Promise<string[]> {
    return this.inner.list(module, options);
  }
  delete(module: string, version: string, options?: CallOptions): Promise<void> {
    return this.inner.delete(module, version, options);
  }
  catalog(options: CatalogOptions): Promise<CatalogPage> {
    return this.inner.catalog(options);
  }
  index(options: IndexOptions): Promise<IndexPage> {
    return this.inner.index(options);
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  private hang(signal: AbortSignal | undefined): Promise<never> {
    this.hanging += 1;
    return new Promise((_resolve, reject) => {
      signal?.addEventListener('abort', () => {
        this.hanging -= 1;
        this.aborts.push(signal.reason);
        reject(signal.reason);
      });
    });
  }
}

describe('GrpcStorage deadlines and cancellation', () => {
  let backing: StallingStorage;
  let harness: Harness;

  beforeEach(async () => {
    backing = new StallingStorage();
    harness = await serve(backing);
    await harness.client().save(input('v1.0.0', patternStream(3 * MiB, 5)));
  });

  afterEach(async () => {
    await harness.close();
  });

  it('reports a passed deadline as timeout, and the server stops the backend call', async () => {
    backing.stall = true;
    const storage = harness.client({ deadlineMs: 300 });
    // Without a deadline the call would hang with the backend until the test times out.
    const error = await expectKind(storage.info(module, 'v1.0.0'), 'timeout');
    expect((error.cause as { code?: number }).code).toBe(status.DEADLINE_EXCEEDED);
    await eventually(async () => backing.aborts.length === 1, 'the backend saw the deadline');
    expect((backing.aborts[0] as Error).name).toBe('TimeoutError');
  });

  it('cancels the server call when the caller aborts', async () => {
    backing.stall = true;
    const controller = new AbortController();
    const pending = harness.client().info(module, 'v1.0.0', { signal: controller.signal });
    await eventually(async () => backing.hanging === 1, 'the call reached the backend');
    controller.abort();
    await expectKind(pending, 'cancelled');
    await eventually(async () => backing.aborts.length === 1, 'the backend saw the cancellation');
    expect((backing.aborts[0] as Error).name).toBe('AbortError');
  });

  it('fails a zip download that stops moving with timeout', async () => {
    backing.zipStallAfter = MiB + 10;
    const storage = harness.client({ zipIdleTimeoutMs: 300 });
    const zip = await storage.zip(module, 'v1.0.0');
    expect(zip.size).toBe(3 * MiB);
    const error = await failureOf(readAll(zip.stream));
    expect(error.kind).toBe('timeout');
  });
});

describe('GrpcStorage with a shared token', () => {
  let harness: Harness;

  beforeEach(async () => {
    harness = await serve(new MemoryStorage(), 'open sesame');
  });

  afterEach(async () => {
    await harness.close();
  });

  it('works with the right token', async () => {
    const storage = harness.client();
    await storage.save(input('v1.0.0', patternStream(2 * MiB, 11)));
    expect(await storage.list(module)).toEqual(['v1.0.0']);
    const zip = await storage.zip(module, 'v1.0.0');
    expect(await streamDigest(zip.stream)).toEqual({
      sha256: await patternSha256(2 * MiB, 11),
      size: 2 * MiB,
    });
  });

  it.each([
    ['no', {}],
    ['a wrong', { token: 'open sesame!' }],
    ['an empty', { token: '' }],
  ])('refuses every call with %s token as UNAUTHENTICATED', async (_what, options) => {
    const storage = new GrpcStorage({ url: `127.0.0.1:${harness.server.port}`, ...options });
    try {
      const calls: (() => Promise<unknown>)[] = [
        () => storage.exists(module, 'v1.0.0'),
        () => storage.info(module, 'v1.0.0'),
        () => storage.mod(module, 'v1.0.0'),
        () => storage.zip(module, 'v1.0.0'),
        () => storage.list(module),
        () => storage.delete(module, 'v1.0.0'),
        () => storage.catalog({ pageSize: 10 }),
        () => storage.save(input('v1.0.0', patternStream(2 * MiB, 12))),
      ];
      for (const call of calls) {
        const error = await expectKind(call(), 'failed-precondition');
        expect((error.cause as { code?: number }).code).toBe(status.UNAUTHENTICATED);
      }
      expect(await harness.backing.list(module)).toEqual([]);
    } finally {
      await storage.close();
    }
  });
});

describe('GrpcStorage against a faulty server', () => {
  let server: Server;
  let url: string;
  let storage: GrpcStorage;
  let respond: (call: ServerWritableStream<storageV1.GetZipRequest, storageV1.GetZipResponse>) => void;

  beforeEach(async () => {
    server = new Server();
    // A hand-written peer that speaks the protocol wrongly on purpose; every other method is UNIMPLEMENTED.
    server.addService(storageV1.StorageServiceService, {
      getZip: (call: ServerWritableStream<storageV1.GetZipRequest, storageV1.GetZipResponse>) =>
        respond(call),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    url = `127.0.0.1:${port}`;
    storage = new GrpcStorage({ url });
  });

  afterEach(async () => {
    await storage.close();
    server.forceShutdown();
  });

  const zipBytes = Buffer.from('not really a zip, but bytes all the same');
  const digest = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
  const header = (size: number, sha256 = ''): storageV1.GetZipResponse => ({
    part: { $case: 'header', value: { size, sha256 } },
  });
  const chunk = (value: Buffer): storageV1.GetZipResponse => ({ part: { $case: 'chunk', value } });
  const trailer = (sha256: string): storageV1.GetZipResponse => ({
    part: { $case: 'trailer', value: { sha256 } },
  });

  it('accepts a well-formed stream', async () => {
    respond = (call) => {
      for (const message of [
        header(zipBytes.length, digest(zipBytes)),
        chunk(zipBytes),
        trailer(digest(zipBytes)),
      ])
        call.write(message);
      call.end();
    };
    const zip = await storage.zip(module, 'v1.0.0');
    expect((await readAll(zip.stream)).equals(zipBytes)).toBe(true);
  });

  it.each([
    [
      'a trailer whose SHA-256 does not match the bytes',
      () => [header(zipBytes.length), chunk(zipBytes), trailer(digest(Buffer.from('other')))],
    ],
    [
      'a header whose SHA-256 does not match the bytes',
      () => [
        header(zipBytes.length, digest(Buffer.from('other'))),
        chunk(zipBytes),
        trailer(digest(zipBytes)),
      ],
    ],
    [
      'fewer bytes than the header said',
      () => [header(zipBytes.length + 1), chunk(zipBytes), trailer(digest(zipBytes))],
    ],
    ['more bytes than the header said', () => [header(3), chunk(zipBytes), trailer(digest(zipBytes))]],
    ['no trailer', () => [header(zipBytes.length), chunk(zipBytes)]],
    [
      'something after the trailer',
      () => [header(zipBytes.length), chunk(zipBytes), trailer(digest(zipBytes)), chunk(zipBytes)],
    ],
  ])('fails the zip stream as internal on %s', async (_what, messages) => {
    respond = (call) => {
      for (const message of messages()) call.write(message);
      call.end();
    };
    const zip = await storage.zip(module, 'v1.0.0');
    const error = await failureOf(readAll(zip.stream));
    expect(error.kind).toBe('internal');
  });

  it('fails the call as internal when the stream does not start with a header', async () => {
    respond = (call) => {
      call.write(chunk(zipBytes));
      call.end();
    };
    await expectKind(storage.zip(module, 'v1.0.0'), 'internal');
  });

  it('fails with timeout when no header comes within the deadline', async () => {
    const impatient = new GrpcStorage({ url, deadlineMs: 200 });
    respond = () => undefined;
    try {
      await expectKind(impatient.zip(module, 'v1.0.0'), 'timeout');
    } finally {
      await impatient.close();
    }
  });
});
