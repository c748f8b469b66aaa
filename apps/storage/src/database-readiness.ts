export interface DatabaseReadinessOptions {
  /** One round trip to the database; rejects when it does not answer. Should honour `signal`. */
  ping(signal: AbortSignal): Promise<void>;
  /** Pause between the end of one ping and the start of the next. @default 5000 */
  intervalMs?: number;
  /** Deadline of each ping on its own: a ping still running then counts as failed. @default 5000 */
  timeoutMs?: number;
  /** Consecutive failed pings before readiness turns off; one success turns it back on. @default 3 */
  failureThreshold?: number;
  /** Every ping's result, with the failures in a row so far (0 after a success). */
  onPing?(result: 'ok' | 'failed', consecutiveFailures: number, error?: unknown): void;
  /** Readiness changed. */
  onChange?(ready: boolean): void;
}

/**
 * Readiness that follows the database without flapping under load: a busy database answers a
 * ping late, and one late answer must not take every replica out of service (which turns a
 * slow database into a total outage). Readiness turns off only after several consecutive
 * failed pings, each under its own deadline, and back on at the first success. Pings never
 * overlap: the next one starts an interval after the last one ended.
 */
export class DatabaseReadiness {
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly failureThreshold: number;
  private failures = 0;
  private isReady = true;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: DatabaseReadinessOptions) {
    this.intervalMs = options.intervalMs ?? 5_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.failureThreshold = options.failureThreshold ?? 3;
  }

  get ready(): boolean {
    return this.isReady;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Pings once now, then keeps pinging until {@link stop}. */
  async start(): Promise<void> {
    await this.check();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** One ping under its own deadline; the result updates readiness. */
  async check(): Promise<void> {
    const controller = new AbortController();
    let deadline: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      deadline = setTimeout(() => {
        const reason = new DOMException(`no answer to a ping within ${this.timeoutMs} ms`, 'TimeoutError');
        controller.abort(reason);
        // A driver that ignores the signal must not hold readiness hostage either.
        reject(reason);
      }, this.timeoutMs);
    });
    try {
      await Promise.race([this.options.ping(controller.signal), expired]);
      this.failures = 0;
      this.options.onPing?.('ok', 0);
      this.set(true);
    } catch (error) {
      this.failures += 1;
      this.options.onPing?.('failed', this.failures, error);
      if (this.failures >= this.failureThreshold) this.set(false);
    } finally {
      clearTimeout(deadline);
    }
  }

  private set(ready: boolean): void {
    if (ready === this.isReady) return;
    this.isReady = ready;
    this.options.onChange?.(ready);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.check().finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }
}
