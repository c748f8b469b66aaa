/**
 * A clock that only a test moves: the code under test reads `now` (pass it where a `now`
 * option is taken), and the test calls `advance` instead of sleeping until a TTL has passed.
 */
export class ManualClock {
  private current: number;

  /** @param start ms since the epoch; default the real time, so that timestamps stay plausible. */
  constructor(start = Date.now()) {
    this.current = start;
  }

  /** The clock's time (ms since the epoch); bound, so it can be passed as a function. */
  readonly now = (): number => this.current;

  advance(ms: number): void {
    if (ms < 0) throw new Error('a clock does not go back');
    this.current += ms;
  }
}
