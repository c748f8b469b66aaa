/** Why a call's signal fired: its own deadline passed, or the caller gave up. */
export type CallAbortReason = 'deadline' | 'cancelled';

/**
 * One upstream call's total deadline and the caller's cancellation merged into one
 * `AbortSignal`, remembering which of the two fired first: undici rejects with whatever
 * reason the signal carries, so the kind of the error (`timeout` vs `cancelled`) has to be
 * decided from here, not from the error it throws.
 */
export class CallDeadline {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private firedBy: CallAbortReason | undefined;
  private readonly onCallerAbort = (): void => this.abort('cancelled');

  constructor(
    readonly timeoutMs: number,
    private readonly callerSignal?: AbortSignal,
  ) {
    this.signal = this.controller.signal;
    this.timer = setTimeout(() => this.abort('deadline'), timeoutMs);
    if (callerSignal?.aborted) this.abort('cancelled');
    else callerSignal?.addEventListener('abort', this.onCallerAbort, { once: true });
  }

  /** What ended the call early, if anything did. */
  get reason(): CallAbortReason | undefined {
    return this.firedBy;
  }

  /** Stops the timer and forgets the caller's signal; call when the call is over, however it ended. */
  dispose(): void {
    clearTimeout(this.timer);
    this.callerSignal?.removeEventListener('abort', this.onCallerAbort);
  }

  private abort(reason: CallAbortReason): void {
    if (this.firedBy !== undefined) return;
    this.firedBy = reason;
    clearTimeout(this.timer);
    const error =
      reason === 'deadline'
        ? new DOMException(`deadline of ${this.timeoutMs} ms passed`, 'TimeoutError')
        : new DOMException('cancelled by the caller', 'AbortError');
    this.controller.abort(error);
  }
}

/** The caller's signal (if any) and a deadline, as one signal for a call to an upstream. */
export function withDeadline(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const deadline = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any([signal, deadline]) : deadline;
}
