import type { IncomingMessage } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { HttpFailure } from './http-failure';

/**
 * Sits right behind a response body, on the bytes as they came off the wire: fails the body
 * when the upstream falls silent for `silenceMs`, and when it ends before it is complete
 * (fewer bytes than its Content-Length, a chunked body cut off). Node's parser reports a cut
 * body too, but only as a premature close; this says what happened.
 */
export class BodyWatch extends Transform {
  private received = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly response: IncomingMessage,
    private readonly silenceMs: number,
  ) {
    super();
    this.arm();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.received += chunk.length;
    this.arm();
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.disarm();
    const declared = Number(this.response.headers['content-length']);
    const short = Number.isFinite(declared) && this.received < declared;
    if (short || !this.response.complete) {
      const expected = Number.isFinite(declared) ? ` of ${declared}` : '';
      done(
        new HttpFailure(
          'truncated',
          'the answer was cut short',
          `the connection ended after ${this.received}${expected} bytes`,
        ),
      );
      return;
    }
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.disarm();
    done(error);
  }

  private arm(): void {
    this.disarm();
    this.timer = setTimeout(() => {
      this.destroy(
        new HttpFailure(
          'timeout',
          `silent for ${this.silenceMs} ms`,
          `no body bytes for ${this.silenceMs} ms after ${this.received} bytes`,
        ),
      );
    }, this.silenceMs);
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
