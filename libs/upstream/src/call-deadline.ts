import { abortedByDeadline } from '@modproxy/errors';

/**
 * Why a call's signal fired: its own deadline passed (`deadline`), a deadline of the caller's
 * passed (`caller-deadline`: the caller's signal fired with a `TimeoutError`, e.g. the whole
 * fetch's deadline), or the caller gave up (`cancelled`: a client that went away).
 */
export type CallAbortReason = 'deadline' | 'caller-deadline' | 'cancelled';

/**
 * One upstream call's total deadline and the caller's cancellation merged into one
 * `AbortSignal`, remembering which of the two fired first: a request fails with whatever
 * error the abort produced, so the kind of the error (`timeout` vs `cancelled`) has to be
 * decided from here, not from the error it throws.
 */
export class CallDeadline {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private firedBy: CallAbortReason | undefined;
  private readonly onCallerAbort = (): void => this.abort(callerReason(this.callerSignal));

  constructor(
    readonly timeoutMs: number,
    private readonly callerSignal?: AbortSignal,
  ) {
    this.signal = this.controller.signal;
    this.timer = setTimeout(() => this.abort('deadline'), timeoutMs);
    if (callerSignal?.aborted) this.abort(callerReason(callerSignal));
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
        : reason === 'caller-deadline'
          ? new DOMException("the caller's deadline passed", 'TimeoutError')
          : new DOMException('cancelled by the caller', 'AbortError');
    this.controller.abort(error);
  }
}

function callerReason(signal: AbortSignal | undefined): CallAbortReason {
  return signal && abortedByDeadline(signal) ? 'caller-deadline' : 'cancelled';
}

/** The caller's signal (if any) and a deadline, as one signal for a call to an upstream. */
export function withDeadline(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const deadline = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any([signal, deadline]) : deadline;
}
