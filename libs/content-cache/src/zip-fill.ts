import { createHash } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { errors, toModuleError, type ModuleError } from '@modproxy/errors';
import { chunkToBuffer, type ModuleVersionRef, type ZipContent } from '@modproxy/storage';
import type { DiskReservation, DiskTier } from './disk-tier';
import { FillReader } from './fill-reader';

/** How a fill ended: kept, thrown away because its version was purged meanwhile, or failed. */
export type FillOutcome = { result: 'stored' | 'discarded' } | { result: 'failed'; error: ModuleError };

export interface ZipFillOptions {
  ref: ModuleVersionRef;
  key: string;
  /** The zip as storage streams it; the fill reads it to its end or destroys it. */
  content: ZipContent;
  tier: DiskTier;
  reservation: DiskReservation;
  /** False once the version has been purged: the file is then not kept. */
  stillWanted(): boolean;
}

const OP = 'content-cache.fill';

/**
 * One zip being copied from storage into the disk tier while any number of readers follow it
 * (positional reads of the same file, each at its own pace, each waiting for bytes not yet
 * written): concurrent misses of one zip cost storage one read. The file gets its final name
 * only when it is complete, synced, as long as storage said, and of the SHA-256 storage gave
 * (when it gave one; a gRPC stream ends only after its trailer's digest matched anyway).
 * Readers end only after those checks; a fill that fails fails every reader still reading.
 */
export class ZipFill {
  readonly size: number;
  /** Resolves with the outcome; never rejects. */
  readonly done: Promise<FillOutcome>;
  private writtenBytes = 0;
  private state: 'filling' | 'complete' | 'failed' = 'filling';
  private failure: ModuleError | undefined;
  private waiters: Array<() => void> = [];
  private readers = 0;
  private finished = false;

  private constructor(
    private readonly options: ZipFillOptions,
    private readonly readHandle: FileHandle,
    writeHandle: FileHandle,
    private readonly tempPath: string,
  ) {
    this.size = options.content.size;
    this.done = this.run(writeHandle);
  }

  /** Creates the temp file and starts copying; the caller keeps the fill until `done`. */
  static async start(options: ZipFillOptions): Promise<ZipFill> {
    const tempPath = options.tier.tempPath();
    let writeHandle: FileHandle | undefined;
    try {
      writeHandle = await open(tempPath, 'wx');
      const readHandle = await open(tempPath, 'r');
      return new ZipFill(options, readHandle, writeHandle, tempPath);
    } catch (error) {
      await writeHandle?.close().catch(() => undefined);
      await unlink(tempPath).catch(() => undefined);
      options.reservation.release();
      options.content.stream.destroy();
      throw toModuleError(error, OP, options.ref);
    }
  }

  /** Bytes in the file so far. */
  get written(): number {
    return this.writtenBytes;
  }

  /** A stream of the whole zip that follows the fill. */
  reader(highWaterMark: number): FillReader {
    this.readers += 1;
    return new FillReader(this, highWaterMark);
  }

  /** @internal The readers' view. */
  get status(): { state: 'filling' | 'complete' | 'failed'; failure: ModuleError | undefined } {
    return { state: this.state, failure: this.failure };
  }

  /** @internal Reads written bytes at `position` for a reader. */
  read(buffer: Buffer, position: number): Promise<{ bytesRead: number }> {
    return this.readHandle.read(buffer, 0, buffer.length, position);
  }

  /** @internal Resolves at the next progress (bytes written, the end, a failure). */
  progress(): Promise<void> {
    if (this.state !== 'filling') return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** @internal A reader is done with the file. */
  release(): void {
    this.readers -= 1;
    this.closeWhenUnused();
  }

  /** Stops the fill (shutdown); readers fail with `reason`. */
  abort(reason: ModuleError): void {
    if (this.state === 'filling') this.options.content.stream.destroy(reason);
  }

  private async run(writeHandle: FileHandle): Promise<FillOutcome> {
    const { content, ref, tier, key, reservation } = this.options;
    const hash = createHash('sha256');
    let writeOpen = true;
    let verified = false;
    try {
      for await (const data of content.stream) {
        const chunk = chunkToBuffer(OP, data);
        if (this.writtenBytes + chunk.length > this.size) {
          throw errors.internal(OP, `zip is longer than the ${this.size} bytes storage said`, ref);
        }
        hash.update(chunk);
        for (let offset = 0; offset < chunk.length;) {
          const { bytesWritten } = await writeHandle.write(
            chunk,
            offset,
            chunk.length - offset,
            this.writtenBytes,
          );
          offset += bytesWritten;
          this.writtenBytes += bytesWritten;
        }
        this.wake();
      }
      if (this.writtenBytes !== this.size) {
        throw errors.internal(OP, `zip has ${this.writtenBytes} bytes, storage said ${this.size}`, ref);
      }
      const sha256 = hash.digest('hex');
      if (content.sha256 !== undefined && content.sha256.toLowerCase() !== sha256) {
        throw errors.internal(OP, `zip SHA-256 ${sha256} is not the ${content.sha256} storage said`, ref);
      }
      await writeHandle.sync();
      writeOpen = false;
      await writeHandle.close();
      verified = true;
      // Readers end once the zip is in place, so a request after a finished download is a hit.
      const kept = await tier.commit(key, this.tempPath, this.size, reservation, this.options.stillWanted);
      this.complete();
      return { result: kept ? 'stored' : 'discarded' };
    } catch (thrown) {
      const error = toModuleError(thrown, OP, ref);
      if (verified) {
        // The bytes were right; only keeping them failed (the disk): the readers still get them.
        this.complete();
        return { result: 'failed', error };
      }
      if (this.state === 'filling') {
        this.state = 'failed';
        this.failure = error;
        this.wake();
      }
      content.stream.destroy();
      if (writeOpen) await writeHandle.close().catch(() => undefined);
      reservation.release();
      await unlink(this.tempPath).catch(() => undefined);
      return { result: 'failed', error };
    } finally {
      this.finished = true;
      this.closeWhenUnused();
    }
  }

  private complete(): void {
    this.state = 'complete';
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private closeWhenUnused(): void {
    if (this.finished && this.readers === 0) void this.readHandle.close().catch(() => undefined);
  }
}
