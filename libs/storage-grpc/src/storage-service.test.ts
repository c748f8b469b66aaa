import { createHash } from 'node:crypto';
import { pipeline, Transform } from 'node:stream';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storageV1 } from '@modproxy/contracts';
import { bearerMetadata, ERROR_KIND_METADATA_KEY } from '@modproxy/grpc';
import { MemoryStorage, type CallOptions, type SaveInput, type ZipContent } from '@modproxy/storage';
import { patternBuffer, readAll } from '@modproxy/storage/compliance';
import { waitUntil } from '@modproxy/testing';
import { startStorageGrpcServer, type StorageGrpcServer } from './storage-grpc-server';
import { ZIP_CHUNK_BYTES } from './zip-chunks';

/**
 * The wire protocol, spoken by the generated client directly: what any client, not only
 * GrpcStorage, may and may not send.
 */

const MiB = 1024 * 1024;
const module = 'example.com/wire';
const token = 'wire-token';

type SaveRequest = storageV1.SaveRequest;

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function header(extra: Partial<storageV1.SaveHeader> = {}): SaveRequest {
  return {
    part: {
      $case: 'header',
      value: {
        module,
        version: 'v1.0.0',
        info: Buffer.from('{"Version":"v1.0.0"}'),
        mod: Buffer.from(`module ${module}\n`),
        zipSha256: '',
        ...extra,
      },
    },
  };
}

const chunk = (value: Buffer): SaveRequest => ({ part: { $case: 'chunk', value } });
const trailer = (zipSize: number, zipSha256: string): SaveRequest => ({
  part: { $case: 'trailer', value: { zipSize, zipSha256 } },
});

/** A MemoryStorage that shows what reached it: how far a save got and how it ended, and the zip reads. */
class WatchedStorage extends MemoryStorage {
  zipBytesReceived = 0;
  zipReads = 0;
  readonly saveResults: Array<'stored' | 'failed'> = [];

  override async zip(module: string, version: string, options?: CallOptions): Promise<ZipContent> {
    this.zipReads += 1;
    return super.zip(module, version, options);
  }

  override async save(input: SaveInput, options?: CallOptions): Promise<void> {
    const counter = new Transform({
      transform: (chunk: Buffer, _encoding, done) => {
        this.zipBytesReceived += chunk.length;
        done(null, chunk);
      },
    });
    pipeline(input.zip, counter, () => undefined);
    try {
      await super.save({ ...input, zip: counter }, options);
      this.saveResults.push('stored');
    } catch (error) {
      this.saveResults.push('failed');
      throw error;
    }
  }
}

describe('StorageService on the wire', () => {
  let backing: WatchedStorage;
  let server: StorageGrpcServer;
  let client: storageV1.StorageServiceClient;

  beforeEach(async () => {
    backing = new WatchedStorage();
    server = await startStorageGrpcServer({ storage: backing, port: 0, token });
    client = new storageV1.StorageServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
  });

  afterEach(async () => {
    client.close();
    await server.close();
    await backing.close();
  });

  /** Sends `messages` as one upload, ending it unless told otherwise; resolves to the status code. */
  function upload(
    messages: SaveRequest[],
    options: { end?: boolean; metadata?: Metadata } = {},
  ): Promise<ServiceError | null> {
    return new Promise((resolve) => {
      const call = client.save(options.metadata ?? bearerMetadata(token), (error) => resolve(error));
      for (const message of messages) call.write(message);
      if (options.end ?? true) call.end();
    });
  }

  function download(version: string, metadata = bearerMetadata(token)) {
    return new Promise<{ messages: storageV1.GetZipResponse[]; error: ServiceError | undefined }>(
      (resolve) => {
        const messages: storageV1.GetZipResponse[] = [];
        const call = client.getZip({ module, version }, metadata);
        call.on('data', (message: storageV1.GetZipResponse) => messages.push(message));
        call.on('error', (error: ServiceError) => resolve({ messages, error }));
        call.on('end', () => resolve({ messages, error: undefined }));
      },
    );
  }

  it('stores an upload of header, chunks and trailer', async () => {
    const zip = patternBuffer(2 * MiB + 5, 1);
    const error = await upload([
      header({ zipSize: zip.length }),
      chunk(zip.subarray(0, MiB)),
      chunk(zip.subarray(MiB, 2 * MiB)),
      chunk(zip.subarray(2 * MiB)),
      trailer(zip.length, sha256(zip)),
    ]);
    expect(error).toBeNull();
    const stored = await backing.zip(module, 'v1.0.0');
    expect(stored.size).toBe(zip.length);
    expect(sha256(await readAll(stored.stream))).toBe(sha256(zip));
    expect((await backing.info(module, 'v1.0.0')).toString()).toBe('{"Version":"v1.0.0"}');
    expect((await backing.mod(module, 'v1.0.0')).toString()).toBe(`module ${module}\n`);
  });

  it('streams a zip as a header (with the SHA-256 when the backend knows it), chunks of at most 1 MiB and a trailer with its SHA-256', async () => {
    const zip = patternBuffer(3 * MiB + 17, 2);
    expect(
      await upload([
        header(),
        ...[0, 1, 2, 3].map((i) => chunk(zip.subarray(i * MiB, (i + 1) * MiB))),
        trailer(zip.length, sha256(zip)),
      ]),
    ).toBeNull();

    const { messages, error } = await download('v1.0.0');
    expect(error).toBeUndefined();
    const [first, ...rest] = messages;
    const last = rest.pop();
    // Memory storage keeps the digest it checked at save time.
    expect(first?.part).toEqual({ $case: 'header', value: { size: zip.length, sha256: sha256(zip) } });
    expect(last?.part).toEqual({ $case: 'trailer', value: { sha256: sha256(zip) } });
    const chunks = rest.map((message) => (message.part?.$case === 'chunk' ? message.part.value : undefined));
    expect(chunks.every((c) => c !== undefined && c.length <= ZIP_CHUNK_BYTES)).toBe(true);
    expect(Buffer.concat(chunks as Buffer[]).equals(zip)).toBe(true);
  });

  it.each([
    [
      'a trailer whose SHA-256 does not match the bytes',
      (zip: Buffer) => [header(), chunk(zip), trailer(zip.length, sha256(Buffer.from('x')))],
    ],
    [
      'a trailer whose size does not match the bytes',
      (zip: Buffer) => [header(), chunk(zip), trailer(zip.length + 1, sha256(zip))],
    ],
    [
      'a header SHA-256 that the bytes do not match',
      (zip: Buffer) => [
        header({ zipSha256: sha256(Buffer.from('y')) }),
        chunk(zip),
        trailer(zip.length, sha256(zip)),
      ],
    ],
    [
      'more bytes than the header declared',
      (zip: Buffer) => [header({ zipSize: 10 }), chunk(zip), trailer(zip.length, sha256(zip))],
    ],
    [
      'a malformed header SHA-256',
      (zip: Buffer) => [header({ zipSha256: 'abc' }), chunk(zip), trailer(zip.length, sha256(zip))],
    ],
    ['a chunk before the header', (zip: Buffer) => [chunk(zip), header(), trailer(zip.length, sha256(zip))]],
    ['a second header', (zip: Buffer) => [header(), header(), chunk(zip), trailer(zip.length, sha256(zip))]],
    [
      'a chunk over 1 MiB',
      (zip: Buffer) => [
        header(),
        chunk(Buffer.concat([zip, zip])),
        trailer(2 * zip.length, sha256(Buffer.concat([zip, zip]))),
      ],
    ],
    ['no trailer', (zip: Buffer) => [header(), chunk(zip)]],
    ['no message at all', () => []],
    [
      'an invalid module path',
      (zip: Buffer) => [
        header({ module: 'example.com/../etc' }),
        chunk(zip),
        trailer(zip.length, sha256(zip)),
      ],
    ],
    [
      'a non-canonical version',
      (zip: Buffer) => [header({ version: 'v1.0' }), chunk(zip), trailer(zip.length, sha256(zip))],
    ],
  ])('rejects an upload with %s as INVALID_ARGUMENT and stores nothing', async (_what, messages) => {
    const zip = patternBuffer(MiB, 3);
    const error = await upload(messages(zip));
    expect(error?.code, error?.details).toBe(status.INVALID_ARGUMENT);
    expect(error?.metadata.get(ERROR_KIND_METADATA_KEY)).toEqual(['invalid-argument']);
    expect(await backing.catalog({ pageSize: 10 })).toEqual({ entries: [] });
  });

  it('discards an upload whose client cancels after sending most of the zip', async () => {
    const zip = patternBuffer(4 * MiB, 4);
    const call = client.save(bearerMetadata(token), () => undefined);
    call.write(header({ zipSize: zip.length, zipSha256: sha256(zip) }));
    for (let i = 0; i < 3; i++) call.write(chunk(zip.subarray(i * MiB, (i + 1) * MiB)));
    await waitUntil(() => backing.zipBytesReceived === 3 * MiB, { what: 'the backend has 3 of 4 MiB' });
    call.cancel();
    await waitUntil(() => backing.saveResults.length === 1, { what: 'the backend save ends' });
    expect(backing.saveResults).toEqual(['failed']);
    expect(await backing.exists(module, 'v1.0.0')).toBe(false);
    // The version is free for a complete upload.
    expect(
      await upload([
        header(),
        ...[0, 1, 2, 3].map((i) => chunk(zip.subarray(i * MiB, (i + 1) * MiB))),
        trailer(zip.length, sha256(zip)),
      ]),
    ).toBeNull();
  });

  it('answers a missing version NOT_FOUND, with the kind in the trailers', async () => {
    const { error } = await download('v9.9.9');
    expect(error?.code).toBe(status.NOT_FOUND);
    expect(error?.metadata.get(ERROR_KIND_METADATA_KEY)).toEqual(['not-found']);
  });

  it('refuses streams without the bearer token as UNAUTHENTICATED before touching storage', async () => {
    const zip = patternBuffer(1000, 5);
    const refused = await upload([header(), chunk(zip), trailer(zip.length, sha256(zip))], {
      metadata: new Metadata(),
    });
    expect(refused?.code).toBe(status.UNAUTHENTICATED);
    const wrong = await upload([header(), chunk(zip), trailer(zip.length, sha256(zip))], {
      metadata: bearerMetadata('wire-tokeN'),
    });
    expect(wrong?.code).toBe(status.UNAUTHENTICATED);
    expect(await backing.exists(module, 'v1.0.0')).toBe(false);

    const basic = new Metadata();
    basic.set('authorization', `Basic ${token}`);
    expect((await download('v1.0.0', basic)).error?.code).toBe(status.UNAUTHENTICATED);
    expect((await download('v1.0.0', new Metadata())).error?.code).toBe(status.UNAUTHENTICATED);
    // Storage never saw any of them: no save began, no zip was opened.
    expect(backing.saveResults).toEqual([]);
    expect(backing.zipBytesReceived).toBe(0);
    expect(backing.zipReads).toBe(0);
  });
});
