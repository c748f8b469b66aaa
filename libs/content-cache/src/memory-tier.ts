/**
 * What an entry costs beyond its bytes (the key string, the Map entry, the Buffer object), so
 * that a bound full of 200-byte `.info` files is still a bound on memory.
 */
export const MEMORY_ENTRY_OVERHEAD_BYTES = 200;

export interface MemoryTierOptions {
  /** Bytes held at most, content and {@link MEMORY_ENTRY_OVERHEAD_BYTES} per entry together; 0 holds nothing. */
  maxBytes: number;
  /** Told of every entry pushed out to make room for a newer one. @default none */
  onEvicted?(bytes: number): void;
}

/**
 * A byte-bounded least-recently-used map of small immutable files. A Map iterates in insertion
 * order, so moving an entry to the end on every hit keeps the least recently used one first.
 */
export class MemoryTier {
  readonly maxBytes: number;
  private readonly entries = new Map<string, Buffer>();
  private readonly onEvicted: (bytes: number) => void;
  private used = 0;

  constructor(options: MemoryTierOptions) {
    this.maxBytes = Math.max(0, options.maxBytes);
    this.onEvicted = options.onEvicted ?? (() => undefined);
  }

  /** Bytes held, overhead included. */
  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): Buffer | undefined {
    const bytes = this.entries.get(key);
    if (bytes !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, bytes);
    }
    return bytes;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /**
   * Keeps a copy of `bytes` (a Buffer may be a view into a larger pooled or network buffer,
   * which would keep all of it alive); returns the copy, or undefined when it does not fit at all.
   */
  set(key: string, bytes: Buffer): Buffer | undefined {
    const cost = costOf(bytes.length);
    if (cost > this.maxBytes) return undefined;
    this.delete(key);
    while (this.used + cost > this.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      const freed = this.delete(oldest.value);
      this.onEvicted(freed);
    }
    const copy = Buffer.allocUnsafeSlow(bytes.length);
    bytes.copy(copy);
    this.entries.set(key, copy);
    this.used += cost;
    return copy;
  }

  /** Drops an entry; returns the bytes it held (0 when there was none). */
  delete(key: string): number {
    const bytes = this.entries.get(key);
    if (bytes === undefined) return 0;
    this.entries.delete(key);
    const cost = costOf(bytes.length);
    this.used -= cost;
    return cost;
  }

  /** Drops everything; returns the bytes freed and the entries dropped. */
  clear(): { bytes: number; entries: number } {
    const dropped = { bytes: this.used, entries: this.entries.size };
    this.entries.clear();
    this.used = 0;
    return dropped;
  }
}

function costOf(length: number): number {
  return length + MEMORY_ENTRY_OVERHEAD_BYTES;
}
