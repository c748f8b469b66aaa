/**
 * Keeps a label's values to a bounded set: the first `limit` distinct values seen keep their
 * names, every later one is counted as `other`. For labels whose values come from the outside
 * world but are few in practice (the VCS hosts direct fetches go to), so that a burst of
 * vanity hosts cannot grow the number of series without end.
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();

  /**
   * @param limit distinct values kept, beside `other`
   * @param other the value every value past the limit becomes
   */
  constructor(
    private readonly limit: number,
    private readonly other = 'other',
  ) {}

  /** The value to record for `value`. */
  of(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.limit) return this.other;
    this.seen.add(value);
    return value;
  }
}
