/**
 * Keeps a label's values to a bounded set: the first `limit` distinct values admitted keep their
 * names, every other one is counted as `other`. For labels whose values come from the outside
 * world but are few in practice (the VCS hosts direct fetches go to), so that a burst of
 * vanity hosts cannot grow the number of series without end.
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();
  private readonly fixed: ReadonlySet<string>;

  /**
   * @param limit distinct values kept, beside `other` and the `fixed` ones
   * @param other the value every value not kept becomes
   * @param fixed values always recorded as themselves that take no slot (`invalid`, say)
   */
  constructor(
    private readonly limit: number,
    private readonly other = 'other',
    fixed: readonly string[] = [],
  ) {
    this.fixed = new Set([other, ...fixed]);
  }

  /**
   * The value to record for `value`. A value not kept yet takes a slot only when `admit` says
   * it deserves one (a VCS host once a fetch from it succeeded: anyone can make a request fail
   * for any host); until then, and once the slots are taken, it is `other`.
   */
  of(value: string, admit = true): string {
    if (this.seen.has(value) || this.fixed.has(value)) return value;
    if (!admit || this.seen.size >= this.limit) return this.other;
    this.seen.add(value);
    return value;
  }
}
