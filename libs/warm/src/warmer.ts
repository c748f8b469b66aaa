import type { WarmEntry } from './warm-entries';

/** What warming one module version came to. */
export type WarmResult = 'fetched' | 'already-there' | 'queued' | 'failed';

export interface WarmOutcome {
  result: WarmResult;
  /** Why it failed, for the summary (a client's message, never a credential). */
  reason?: string;
}

/** One way of warming: through a proxy, or by queueing fetch jobs. */
export interface Warmer {
  /** Never rejects: a failure is an outcome. */
  warm(entry: WarmEntry, signal: AbortSignal): Promise<WarmOutcome>;
  close(): Promise<void>;
}
