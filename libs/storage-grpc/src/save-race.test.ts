import { PassThrough, type Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isModuleError } from '@modproxy/errors';
import { MemoryStorage, type CallOptions, type SaveInput } from '@modproxy/storage';
import { patternBuffer, patternStream, streamDigest, patternSha256 } from '@modproxy/storage/compliance';
import { GrpcStorage } from './grpc-storage';
import { startStorageGrpcServer, type StorageGrpcServer } from './storage-grpc-server';

const module = 'example.com/raced/zip';
const MiB = 1024 * 1024;

/**
 * A real MemoryStorage whose saves answer late, as a loaded database does: a losing save
 * rejects only once the test lets its clean-up finish, and a winning one resolves only once
 * the test lets its commit be answered.
 */
class SlowAnswers extends MemoryStorage {
  holdCleanup = false;
  holdCommit = false;
  holdStart = false;
  private readonly held: Array<() => void> = [];
  pendingAnswers = 0;

  override async save(input: SaveInput, options?: CallOptions): Promise<void> {
    if (this.holdStart) await this.hold();
    try {
      await super.save(input, options);
    } catch (error) {
      if (this.holdCleanup) await this.hold();
      throw error;
    }
    if (this.holdCommit) await this.hold();
  }

  release(): void {
    for (const resolve of this.held.splice(0)) resolve();
  }

  private hold(): Promise<void> {
    this.pendingAnswers += 1;
    return new Promise((resolve) =>
      this.held.push(() => {
        this.pendingAnswers -= 1;
        resolve();
      }),
    );
  }
}

const saveInput = (zip: Readable): SaveInput => ({
  module,
  version: 'v1.0.0',
  info: Buffer.from('{"Version":"v1.0.0"}'),
  mod: Buffer.from(`module ${module}\n`),
  zip,
});

describe('concurrent saves of one version (replicas after the same cold miss)', () => {
  let backing: SlowAnswers;
  let server: StorageGrpcServer;
  const clients: GrpcStorage[] = [];
  const client = (options: { deadlineMs?: number } = {}) => {
    const made = new GrpcStorage({ url: `127.0.0.1:${server.port}`, ...options });
    clients.push(made);
    return made;
  };

  beforeEach(async () => {
    backing = new SlowAnswers();
    server = await startStorageGrpcServer({ storage: backing, port: 0 });
  });

  afterEach(async () => {
    backing.release();
    for (const made of clients.splice(0)) await made.close();
    await server.close();
    await backing.close();
  });

  it('answers a save still uploading with already-exists as soon as another one is stored', async () => {
    backing.holdCleanup = true;
    const slowZip = new PassThrough();
    const losing = client()
      .save(saveInput(slowZip))
      .catch((e: unknown) => e);
    slowZip.write(patternBuffer(MiB, 1));
    await client().save(saveInput(patternStream(2 * MiB, 2)));
    // The loser's zip has not even ended, and its backend has not cleaned up: still it hears.
    const error = await losing;
    expect(isModuleError(error, 'already-exists'), String(error)).toBe(true);
    expect(slowZip.writableEnded).toBe(false);
    expect(await streamDigest((await client().zip(module, 'v1.0.0')).stream)).toEqual({
      sha256: await patternSha256(2 * MiB, 2),
      size: 2 * MiB,
    });
  });

  it('reports already-exists, not a timeout, when the answer to an upload comes too late but the version is stored', async () => {
    backing.holdCommit = true;
    const error = await client({ deadlineMs: 500 })
      .save(saveInput(patternStream(MiB, 3)))
      .catch((e: unknown) => e);
    expect(backing.pendingAnswers).toBe(1);
    expect(isModuleError(error, 'already-exists'), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/is stored, though this upload got no answer/);
  });

  it('still reports the timeout when the version was not stored', async () => {
    backing.holdStart = true;
    const error = await client({ deadlineMs: 500 })
      .save(saveInput(patternStream(1024, 4)))
      .catch((e: unknown) => e);
    expect(isModuleError(error, 'timeout'), String(error)).toBe(true);
    expect(await client().exists(module, 'v1.0.0')).toBe(false);
  });
});
