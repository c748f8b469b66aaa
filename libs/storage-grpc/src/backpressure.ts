/** A grpc-js call that takes messages: a server's response stream or a client's request stream. */
export interface MessageSink<T> {
  write(message: T, callback: (error?: Error | null) => void): boolean;
}

/** Messages handed to grpc-js but not yet taken by HTTP/2; see {@link MessageWriter}. */
export const DEFAULT_MESSAGES_IN_FLIGHT = 4;

/**
 * Writes messages to a call, keeping at most `maxInFlight` of them between us and HTTP/2
 * flow control, so a zip is read from its source only as fast as the peer takes it. grpc-js
 * would only push back after 16 buffered messages (16 MiB of zip chunks); counting write
 * callbacks keeps that to a few. `stop` ends a wait for a call that will never take
 * another message (cancelled, failed, timed out): the write then rejects with its reason.
 */
export class MessageWriter<T> {
  private inFlight = 0;
  private wake: (() => void) | undefined;

  constructor(
    private readonly sink: MessageSink<T>,
    private readonly stop: AbortSignal,
    private readonly maxInFlight = DEFAULT_MESSAGES_IN_FLIGHT,
  ) {}

  async write(message: T): Promise<void> {
    if (this.stop.aborted) throw this.stop.reason;
    this.inFlight += 1;
    this.sink.write(message, () => {
      this.inFlight -= 1;
      this.wake?.();
    });
    if (this.inFlight < this.maxInFlight) return;
    await new Promise<void>((resolve, reject) => {
      const onStop = () => {
        this.wake = undefined;
        reject(this.stop.reason);
      };
      this.wake = () => {
        if (this.inFlight >= this.maxInFlight) return;
        this.wake = undefined;
        this.stop.removeEventListener('abort', onStop);
        resolve();
      };
      this.stop.addEventListener('abort', onStop, { once: true });
    });
  }
}
