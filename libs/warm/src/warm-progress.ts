import { SingleBar } from 'cli-progress';
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

const LABELS: Record<WarmOutcome['result'], string> = {
  fetched: 'fetched',
  'already-there': 'already there',
  queued: 'queued',
  failed: 'FAILED',
};

/** A bar that redraws in place (cli-progress), with running counts. */
class BarProgress implements WarmProgress {
  private readonly bar: SingleBar;
  private readonly counts = { fetched: 0, cached: 0, failed: 0 };

  constructor(output: ProgressOutput) {
    this.bar = new SingleBar({
      stream: output as NodeJS.WriteStream,
      format:
        'warming [{bar}] {value}/{total} | {fetched} fetched, {cached} already there, {failed} failed | {last}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
      noTTYOutput: false,
      etaBuffer: 50,
    });
  }

  start(total: number): void {
    this.bar.start(total, 0, { ...this.counts, last: '' });
  }

  done(entry: WarmEntry, outcome: WarmOutcome): void {
    if (outcome.result === 'fetched') this.counts.fetched += 1;
    else if (outcome.result === 'failed') this.counts.failed += 1;
    else this.counts.cached += 1;
    this.bar.increment(1, { ...this.counts, last: `${entry.module}@${entry.version}` });
  }

  stop(): void {
    this.bar.stop();
  }
}

/** Plain lines, for logs and pipes: `[3/40] fetched example.com/m@v1.0.0`. */
class LineProgress implements WarmProgress {
  private total = 0;
  private count = 0;

  constructor(private readonly output: ProgressOutput) {}

  start(total: number): void {
    this.total = total;
    this.output.write(`warming ${total} module versions\n`);
  }

  done(entry: WarmEntry, outcome: WarmOutcome): void {
    this.count += 1;
    const why = outcome.reason ? `: ${outcome.reason}` : '';
    this.output.write(
      `[${this.count}/${this.total}] ${LABELS[outcome.result]} ${entry.module}@${entry.version}${why}\n`,
    );
  }

  stop(): void {}
}

export function createWarmProgress(output: ProgressOutput): WarmProgress {
  return output.isTTY ? new BarProgress(output) : new LineProgress(output);
}
