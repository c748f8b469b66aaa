/**
 * The last `capacity` items pushed, newest first: memory that stays bounded however long the
 * process runs and however many fetches it sees.
 */
export class BoundedRing<T> {
  private readonly items: T[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
  }

  push(item: T): void {
    this.items.unshift(item);
    if (this.items.length > this.capacity) this.items.length = this.capacity;
  }

  /** Newest first; a copy. */
  list(): T[] {
    return [...this.items];
  }

  get size(): number {
    return this.items.length;
  }
}
