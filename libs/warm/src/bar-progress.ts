import { SingleBar } from 'cli-progress';
import type { WarmEntry } from './warm-entries';
import type { ProgressOutput, WarmProgress } from './warm-progress';
import type { WarmOutcome } from './warmer';

/** A bar that redraws in place (cli-progress), with running counts. */
export class BarProgress implements WarmProgress {
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
