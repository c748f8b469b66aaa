import type { WarmEntry } from './warm-entries';
import type { ProgressOutput, WarmProgress } from './warm-progress';
import type { WarmOutcome } from './warmer';

const LABELS: Record<WarmOutcome['result'], string> = {
  fetched: 'fetched',
  'already-there': 'already there',
  queued: 'queued',
  failed: 'FAILED',
};

/** Plain lines, for logs and pipes: `[3/40] fetched example.com/m@v1.0.0`. */
export class LineProgress implements WarmProgress {
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
