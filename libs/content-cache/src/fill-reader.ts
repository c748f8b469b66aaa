import { Readable } from 'node:stream';
import { errors, toModuleError } from '@modproxy/errors';
import type { ZipFill } from './zip-fill';

/**
 * One reader of a zip being filled: reads what the fill has written, waits for more, and ends
 * only once the fill is complete and checked. Destroying it leaves the fill going for the others.
 */
export class FillReader extends Readable {
  private position = 0;
  private pumping = false;
  private released = false;

  constructor(
    private readonly fill: ZipFill,
    private readonly chunkBytes: number,
  ) {
    super({ highWaterMark: chunkBytes });
  }

  override _read(): void {
    void this.pump();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.release();
    callback(error);
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        if (this.destroyed) return;
        const available = this.fill.written - this.position;
        if (available > 0) {
          const buffer = Buffer.allocUnsafe(Math.min(available, this.chunkBytes));
          const { bytesRead } = await this.fill.read(buffer, this.position);
          if (this.destroyed) return;
          if (bytesRead === 0) throw errors.internal('content-cache.read', 'the cache file ended early');
          this.position += bytesRead;
          if (!this.push(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead))) return;
          continue;
        }
        const { state, failure } = this.fill.status;
        if (state === 'failed') {
          this.destroy(failure);
          return;
        }
        if (state === 'complete' && this.position === this.fill.size) {
          this.push(null);
          this.release();
          return;
        }
        await this.fill.progress();
      }
    } catch (error) {
      this.destroy(toModuleError(error, 'content-cache.read'));
    } finally {
      this.pumping = false;
    }
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.fill.release();
  }
}
