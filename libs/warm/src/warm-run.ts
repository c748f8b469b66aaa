import type { WarmEntry } from './warm-entries';
import type { WarmProgress } from './warm-progress';
import type { Warmer, WarmOutcome } from './warmer';

export interface WarmReport {
  fetched: WarmEntry[];
  alreadyThere: WarmEntry[];
  queued: WarmEntry[];
  failed: Array<WarmEntry & { reason: string }>;
}

export interface WarmRunOptions {
  /** Entries warmed at once. @default 8 */
  concurrency?: number;
  signal?: AbortSignal;
}

/**
 * Warms every entry with at most `concurrency` at once, telling the progress as each ends;
 * the report keeps the file's order within each group.
 */
export async function runWarm(
  entries: readonly WarmEntry[],
  warmer: Warmer,
  progress: WarmProgress,
  options: WarmRunOptions = {},
): Promise<WarmReport> {
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const signal = options.signal ?? new AbortController().signal;
  const outcomes: WarmOutcome[] = new Array<WarmOutcome>(entries.length);
  let next = 0;
  progress.start(entries.length);
  const lane = async (): Promise<void> => {
    for (;;) {
      const index = next++;
      const entry = entries[index];
      if (entry === undefined) return;
      const outcome = signal.aborted
        ? { result: 'failed' as const, reason: 'interrupted' }
        : await warmer.warm(entry, signal);
      outcomes[index] = outcome;
      progress.done(entry, outcome);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, entries.length) }, lane));
  } finally {
    progress.stop();
  }
  const report: WarmReport = { fetched: [], alreadyThere: [], queued: [], failed: [] };
  entries.forEach((entry, i) => {
    const outcome = outcomes[i] ?? { result: 'failed', reason: 'not warmed' };
    if (outcome.result === 'fetched') report.fetched.push(entry);
    else if (outcome.result === 'already-there') report.alreadyThere.push(entry);
    else if (outcome.result === 'queued') report.queued.push(entry);
    else report.failed.push({ ...entry, reason: outcome.reason ?? 'failed' });
  });
  return report;
}
