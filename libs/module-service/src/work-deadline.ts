/**
 * The deadline of work shared by every caller (a fetch, a version query): its signal fires
 * with a `TimeoutError`, as `AbortSignal.timeout`'s does, so whatever it stops reports
 * `timeout`. Unlike `AbortSignal.timeout` its timer is stopped once the work is over, and it
 * runs on the timers tests can move.
 */
export class WorkDeadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;

  constructor(readonly timeoutMs: number) {
    this.timer = setTimeout(
      () => this.controller.abort(new DOMException(`deadline of ${timeoutMs} ms passed`, 'TimeoutError')),
      timeoutMs,
    );
    this.timer.unref?.();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Call once the work is over, however it ended. */
  dispose(): void {
    clearTimeout(this.timer);
  }
}
