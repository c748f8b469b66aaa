/**
 * A fixed number of slots shared by many hosts, at most `hostLimit` of them held for one host,
 * so that one slow host cannot take every slot. Waiters are served first come, first served
 * among those whose host is under its limit.
 */
export class HostSlots {
  private held = 0;
  private readonly heldByHost = new Map<string, number>();
  private readonly waiters: Array<{ host: string; grant: () => void }> = [];

  constructor(
    private readonly limit: number,
    private readonly hostLimit: number,
  ) {}

  /** Slots held now. */
  get active(): number {
    return this.held;
  }

  /** Calls waiting for a slot now. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Takes a slot for `host` if one is free for it. No waiter is passed over: after every
   * release the waiters that fit are served, so none fits when a new call comes.
   */
  tryAcquire(host: string): boolean {
    if (!this.fits(host)) return false;
    this.take(host);
    return true;
  }

  /** Waits for a slot for `host`; rejects with the signal's reason (and leaves the queue) on abort. */
  wait(host: string, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const waiter = {
        host,
        grant: (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(signal?.reason);
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(host: string): void {
    this.held--;
    const count = (this.heldByHost.get(host) ?? 1) - 1;
    if (count === 0) this.heldByHost.delete(host);
    else this.heldByHost.set(host, count);
    for (let i = 0; i < this.waiters.length && this.held < this.limit;) {
      const waiter = this.waiters[i];
      if (waiter && this.fits(waiter.host)) {
        this.waiters.splice(i, 1);
        this.take(waiter.host);
        waiter.grant();
      } else {
        i++;
      }
    }
  }

  private fits(host: string): boolean {
    return this.held < this.limit && (this.heldByHost.get(host) ?? 0) < this.hostLimit;
  }

  private take(host: string): void {
    this.held++;
    this.heldByHost.set(host, (this.heldByHost.get(host) ?? 0) + 1);
  }
}
