import { BarProgress } from './bar-progress';
import { LineProgress } from './line-progress';
import type { WarmEntry } from './warm-entries';
import type { WarmOutcome } from './warmer';

/** Shows how warming goes, entry by entry. */
export interface WarmProgress {
  start(total: number): void;
  done(entry: WarmEntry, outcome: WarmOutcome): void;
  stop(): void;
}

/** Where the progress goes: a terminal gets a bar, anything else a line per entry. */
export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function createWarmProgress(output: ProgressOutput): WarmProgress {
  return output.isTTY ? new BarProgress(output) : new LineProgress(output);
}
