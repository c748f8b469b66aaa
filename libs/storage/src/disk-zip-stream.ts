import { close, read } from 'node:fs';
import { Readable } from 'node:stream';

/**
 * A stream whose chunks its consumer may hand back once it is done with them (the socket has
 * written them), to be read into again: a download at full speed then allocates nothing per
 * read. A consumer that never hands chunks back gets fresh ones, as from any stream.
 */
export interface RecyclingReadable extends Readable {
  /** `chunk`, one of this stream's, is no longer referenced by the caller: it may be overwritten. */
  recycle(chunk: Buffer): void;
}

export function isRecyclingReadable(stream: Readable): stream is RecyclingReadable {
  return typeof (stream as Partial<RecyclingReadable>).recycle === 'function';
}

/** Chunks kept for reuse per stream: one being written, one waiting, one being read. */
const KEPT_CHUNKS = 3;

/**
 * A stored zip read from its open file descriptor in large chunks (positional reads, so the
 * bytes stay readable after the version is deleted), closing the descriptor when it ends or is
 * destroyed. Without recycling every read is a new buffer, and at gigabytes per second the
 * buffers that wait for the garbage collector, not the downloads, are what the process's
 * resident memory grows by.
 */
export class DiskZipStream extends Readable implements RecyclingReadable {
  private readonly free: Buffer[] = [];
  private position = 0;
  private reading = false;

  constructor(
    private readonly fd: number,
    private readonly size: number,
    private readonly chunkBytes: number,
  ) {
    super({ highWaterMark: chunkBytes });
  }

  override _read(): void {
    if (this.reading) return;
    const left = this.size - this.position;
    if (left <= 0) {
      this.push(null);
      return;
    }
    const buffer = this.free.pop() ?? Buffer.allocUnsafeSlow(this.chunkBytes);
    const length = Math.min(left, this.chunkBytes);
    this.reading = true;
    read(this.fd, buffer, 0, length, this.position, (error, bytesRead) => {
      this.reading = false;
      if (error) return void this.destroy(error);
      if (bytesRead === 0)
        return void this.destroy(new Error(`zip ended at ${this.position} of ${this.size} bytes`));
      this.position += bytesRead;
      this.push(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
    });
  }

  recycle(chunk: Buffer): void {
    // Only whole chunks of ours (the last, shorter one is a view and is simply dropped).
    if (chunk.length === this.chunkBytes && chunk.byteOffset === 0 && this.free.length < KEPT_CHUNKS) {
      this.free.push(chunk);
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.free.length = 0;
    close(this.fd, () => callback(error));
  }
}
