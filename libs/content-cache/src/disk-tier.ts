import { randomUUID } from 'node:crypto';
import { open as openFd } from 'node:fs';
import { mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { diskName } from './cache-key';
import { DiskTierLock } from './disk-tier-lock';

/** A plain descriptor, which the zip stream reads from and closes (a FileHandle would close it again). */
const openFile = promisify(openFd);

/** The directory is another live process's disk tier: this one must go without. */
export class DiskTierInUse extends Error {
  constructor(
    readonly dir: string,
    readonly heldBy: string,
  ) {
    super(`the content cache directory ${dir} is in use by ${heldBy}`);
    this.name = 'DiskTierInUse';
  }
}

export interface DiskTierOptions {
  /**
   * The tier's directory, for one process alone: at open, what a crash left half-written in
   * it is removed and its zips are counted again.
   */
  dir: string;
  /** Zip bytes kept at most; a zip larger than this is never kept. */
  maxBytes: number;
  /** Told of every zip removed to make room for a newer one. @default none */
  onEvicted?(bytes: number): void;
}

/** Room set aside for a zip being written, so that concurrent fills never overshoot the bound. */
export interface DiskReservation {
  readonly bytes: number;
  release(): void;
}

interface DiskEntry {
  path: string;
  size: number;
}

/** `<sha256 of module@version>-<size>.zip`: the size is in the name, so a short file is never taken for whole. */
const ENTRY_NAME = /^([0-9a-f]{64})-(\d+)\.zip$/;
/** Files being written: `fill-<uuid>.part` in `tmp/`, renamed into `zips/` only when complete. */
const TEMP_NAME = /^fill-[0-9a-f-]{36}\.part$/;

/**
 * Zips on local disk, least recently used first out, within a byte bound. A zip is written to
 * `tmp/` and renamed into `zips/<2 hex>/` only once it is complete, synced and checked, so the
 * tier never holds a partial file under its final name; at open, leftovers in `tmp/` are
 * removed, zips whose size differs from their name are removed, and the rest are counted again
 * (oldest modification first out). Only file names of these two forms are ever removed, so a
 * mistaken directory loses nothing else.
 */
export class DiskTier {
  readonly dir: string;
  readonly maxBytes: number;
  private readonly entries = new Map<string, DiskEntry>();
  private readonly onEvicted: (bytes: number) => void;
  private used = 0;
  private reserved = 0;
  private lock: DiskTierLock | undefined;

  private constructor(options: DiskTierOptions) {
    this.dir = options.dir;
    this.maxBytes = Math.max(0, options.maxBytes);
    this.onEvicted = options.onEvicted ?? (() => undefined);
  }

  /** Takes the directory (or throws {@link DiskTierInUse}), removes what a crash left, counts the rest. */
  static async open(options: DiskTierOptions): Promise<DiskTier> {
    const tier = new DiskTier(options);
    await mkdir(join(tier.dir, 'tmp'), { recursive: true });
    await mkdir(join(tier.dir, 'zips'), { recursive: true });
    const taken = await DiskTierLock.acquire(tier.dir);
    if ('heldBy' in taken) throw new DiskTierInUse(tier.dir, taken.heldBy);
    tier.lock = taken.lock;
    try {
      await tier.removeLeftovers();
      await tier.recount();
    } catch (error) {
      await tier.close();
      throw error;
    }
    return tier;
  }

  /** Gives the directory up (what it holds stays, for the next process to count). */
  async close(): Promise<void> {
    await this.lock?.release();
    this.lock = undefined;
  }

  /** Zip bytes held (not counting fills under way). */
  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Whether a zip of `size` bytes could ever be kept. */
  fits(size: number): boolean {
    return size <= this.maxBytes;
  }

  has(key: string): boolean {
    return this.entries.has(diskName(key));
  }

  /**
   * Opens the zip of `key` for reading, or undefined when the tier does not have it (a file
   * removed behind our back is forgotten). An open file stays readable after an eviction.
   */
  async openZip(key: string): Promise<{ fd: number; size: number } | undefined> {
    const name = diskName(key);
    const entry = this.entries.get(name);
    if (entry === undefined) return undefined;
    this.entries.delete(name);
    this.entries.set(name, entry);
    try {
      return { fd: await openFile(entry.path, 'r'), size: entry.size };
    } catch {
      if (this.entries.get(name) === entry) this.forget(name);
      return undefined;
    }
  }

  /** A fresh temp file name for a fill. */
  tempPath(): string {
    return join(this.dir, 'tmp', `fill-${randomUUID()}.part`);
  }

  /**
   * Sets room aside for a zip of `size` bytes, evicting the least recently used zips as needed;
   * undefined when the zip can never fit or fills under way hold the room.
   */
  reserve(size: number): DiskReservation | undefined {
    if (size > this.maxBytes) return undefined;
    while (this.used + this.reserved + size > this.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done) return undefined;
      this.onEvicted(this.forget(oldest.value));
    }
    this.reserved += size;
    let released = false;
    return {
      bytes: size,
      release: () => {
        if (released) return;
        released = true;
        this.reserved -= size;
      },
    };
  }

  /**
   * Moves a complete, checked temp file into place under `key`. `stillWanted` is asked once the
   * file is in place: false (the version was purged meanwhile) removes it again.
   */
  async commit(
    key: string,
    tempPath: string,
    size: number,
    reservation: DiskReservation,
    stillWanted: () => boolean,
  ): Promise<boolean> {
    const name = diskName(key);
    const dir = join(this.dir, 'zips', name.slice(0, 2));
    const path = join(dir, `${name}-${size}.zip`);
    try {
      await mkdir(dir, { recursive: true });
      await rename(tempPath, path);
    } catch (error) {
      reservation.release();
      await unlink(tempPath).catch(() => undefined);
      throw error;
    }
    reservation.release();
    if (!stillWanted()) {
      await unlink(path).catch(() => undefined);
      return false;
    }
    if (this.entries.has(name)) this.forget(name);
    this.entries.set(name, { path, size });
    this.used += size;
    // The room was set aside; another fill's reservation may still have overtaken it.
    while (this.used + this.reserved > this.maxBytes && this.entries.size > 1) {
      const oldest = this.entries.keys().next();
      if (oldest.done || oldest.value === name) break;
      this.onEvicted(this.forget(oldest.value));
    }
    return true;
  }

  /** Drops the zip of `key`; returns its bytes (0 when there was none). */
  remove(key: string): number {
    return this.forget(diskName(key));
  }

  /** Drops every zip; returns the bytes and the zips dropped. */
  clear(): { bytes: number; entries: number } {
    const dropped = { bytes: this.used, entries: this.entries.size };
    for (const name of [...this.entries.keys()]) this.forget(name);
    return dropped;
  }

  /** Out of the index at once; the file goes in the background (readers keep their open files). */
  private forget(name: string): number {
    const entry = this.entries.get(name);
    if (entry === undefined) return 0;
    this.entries.delete(name);
    this.used -= entry.size;
    unlink(entry.path).catch(() => undefined);
    return entry.size;
  }

  private async removeLeftovers(): Promise<void> {
    const tmp = join(this.dir, 'tmp');
    for (const name of await readdir(tmp)) {
      if (TEMP_NAME.test(name)) await unlink(join(tmp, name)).catch(() => undefined);
    }
  }

  private async recount(): Promise<void> {
    const zips = join(this.dir, 'zips');
    const found: Array<{ name: string; entry: DiskEntry; mtimeMs: number }> = [];
    for (const shard of await readdir(zips)) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      const dir = join(zips, shard);
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const file of names) {
        const match = ENTRY_NAME.exec(file);
        if (!match) continue;
        const [, name = '', sizeText = ''] = match;
        const path = join(dir, file);
        const stats = await stat(path).catch(() => undefined);
        const size = Number(sizeText);
        if (!stats?.isFile() || stats.size !== size || !name.startsWith(shard)) {
          await unlink(path).catch(() => undefined);
          continue;
        }
        found.push({ name, entry: { path, size }, mtimeMs: stats.mtimeMs });
      }
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const { name, entry } of found) {
      // Two files for one version (a crash between a purge and a refill): the newer one stays.
      if (this.entries.has(name)) this.forget(name);
      this.entries.set(name, entry);
      this.used += entry.size;
    }
    while (this.used > this.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.onEvicted(this.forget(oldest.value));
    }
  }
}
