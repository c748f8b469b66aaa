import type { Revalidate, RevalidationQueue } from './revalidation-queue';

export interface InProcessRevalidationQueueOptions {
  revalidate: Revalidate;
  /** Revalidations running at once. Default: 4. */
  concurrency?: number;
  /** Modules waiting at most; further requests are dropped until there is room. Default: 10000. */
  maxPending?: number;
  /** Told when a revalidation failed (it is not retried: the next stale request asks again). */
  onError?(module: string, error: unknown): void;
}

/**
 * The embedded queue: revalidations run in this process, a few at a time, one per module at
 * once. Nothing survives a restart, which only means the next request finds the answer stale
 * again and asks anew.
 */
export class InProcessRevalidationQueue implements RevalidationQueue {
  private readonly revalidate: Revalidate;
  private readonly concurrency: number;
  private readonly maxPending: number;
  private readonly onError: InProcessRevalidationQueueOptions['onError'];
  /** Waiting modules, in arrival order. */
  private readonly pending = new Set<string>();
  private readonly running = new Set<string>();
  private readonly runs = new Set<Promise<void>>();
  private closed = false;

  constructor(options: InProcessRevalidationQueueOptions) {
    this.revalidate = options.revalidate;
    this.concurrency = options.concurrency ?? 4;
    this.maxPending = options.maxPending ?? 10_000;
    this.onError = options.onError;
  }

  async enqueue(module: string): Promise<void> {
    if (this.closed || this.pending.has(module) || this.running.has(module)) return;
    if (this.pending.size >= this.maxPending) return;
    this.pending.add(module);
    this.pump();
  }

  /** Stops taking work and waits for the revalidations that are running. */
  async close(): Promise<void> {
    this.closed = true;
    this.pending.clear();
    await Promise.allSettled([...this.runs]);
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.concurrency) {
      const next = this.pending.values().next();
      if (next.done) return;
      const module = next.value;
      this.pending.delete(module);
      this.running.add(module);
      const run = this.revalidate(module)
        .catch((error: unknown) => this.onError?.(module, error))
        .finally(() => {
          this.running.delete(module);
          this.runs.delete(run);
          this.pump();
        });
      this.runs.add(run);
    }
  }
}
