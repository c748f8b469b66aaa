import { randomBytes } from 'node:crypto';
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ZIP_CHUNK_BYTES } from './zip-chunks';

/**
 * One zip being downloaded, kept in an unlinked temporary file so that any number of readers
 * can follow it, each at its own pace, from the first byte: a slow reader never holds up the
 * download or the others, and memory does not grow with the zip or the number of readers.
 * The file has no name from the moment it exists, so nothing is left behind by a crash.
 */
export class ZipSpool {
  private written = 0;
  private complete = false;
  private failure: Error | undefined;
  private closed = false;
  private readonly waiting = new Set<() => void>();

  private constructor(private readonly file: FileHandle) {}

  /** A new spool in `dir` (default: the OS temp dir), made if it is not there yet. */
  static async create(dir: string = tmpdir()): Promise<ZipSpool> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, `modproxy-zip-spool-${randomBytes(8).toString('hex')}`);
    const file = await open(path, 'wx+', 0o600);
    await unlink(path).catch(() => undefined);
    return new ZipSpool(file);
  }

  async append(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const { bytesWritten } = await this.file.write(chunk, offset, chunk.length - offset, this.written);
      offset += bytesWritten;
      this.written += bytesWritten;
    }
    this.wake();
  }

  /** Every byte is in: readers end once they have read them. */
  finish(): void {
    this.complete = true;
    this.wake();
  }

  /** The download failed: every reader fails with `error` once it has read what arrived before. */
  fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  /** Releases the file; only once no reader is left. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fail(new Error('the zip spool was closed'));
    void this.file.close().catch(() => undefined);
  }

  /** A reader from the first byte; `onClose` runs once when it is destroyed (at its end, too). */
  reader(onClose: () => void): Readable {
    let position = 0;
    let reading = false;
    const buffer = Buffer.allocUnsafe(ZIP_CHUNK_BYTES);
    const next = (at: number) => this.next(at, buffer);
    const stream = new Readable({
      highWaterMark: ZIP_CHUNK_BYTES,
      read() {
        if (reading) return;
        reading = true;
        next(position).then(
          (bytes) => {
            reading = false;
            if (bytes === null) {
              stream.push(null);
              return;
            }
            position += bytes.length;
            // A copy: the buffer is reused for the next read.
            stream.push(Buffer.from(bytes));
          },
          (error: unknown) => {
            reading = false;
            stream.destroy(error as Error);
          },
        );
      },
      destroy(error, callback) {
        onClose();
        callback(error);
      },
    });
    return stream;
  }

  /** Bytes from `position` (waiting for them if need be), `null` at the end, or the failure. */
  private async next(position: number, buffer: Buffer): Promise<Buffer | null> {
    for (;;) {
      if (position < this.written && !this.closed) {
        const length = Math.min(buffer.length, this.written - position);
        const { bytesRead } = await this.file.read(buffer, 0, length, position);
        return buffer.subarray(0, bytesRead);
      }
      if (this.failure) throw this.failure;
      if (this.complete) return null;
      await new Promise<void>((resolve) => this.waiting.add(resolve));
    }
  }

  private wake(): void {
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const resolve of waiting) resolve();
  }
}
