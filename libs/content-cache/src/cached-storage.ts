import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { abortedError, errors, throwIfAborted, toModuleError, waitUnlessAborted } from '@modproxy/errors';
import {
  chunkToBuffer,
  DiskZipStream,
  type CallOptions,
  type CatalogOptions,
  type CatalogPage,
  type IndexOptions,
  type IndexPage,
  type ModuleStorage,
  type ModuleVersionRef,
  type SaveInput,
  type ZipContent,
} from '@modproxy/storage';
import { fileKey, versionKey, type CachedFile } from './cache-key';
import type { ContentCacheEvents, InvalidationOrigin } from './content-cache-events';
import { DiskTier, DiskTierInUse } from './disk-tier';
import { LocalInvalidationBus, type InvalidationBus } from './invalidation-bus';
import { MemoryTier } from './memory-tier';
import { purgeVersion } from './purge-version';
import { ZipFill, type FillOutcome } from './zip-fill';

const KiB = 1024;
const MiB = 1024 * KiB;

export interface CachedStorageOptions {
  /** The storage cached: the storage service over gRPC, or disk in the embedded default. */
  storage: ModuleStorage;
  /** Bytes of the memory tier (`.info`, `.mod`, small zips), overhead included; 0: no memory tier. @default 32 MiB */
  memoryMaxBytes?: number;
  /** Zips up to this size go to the memory tier, larger ones to the disk tier. @default 64 KiB */
  zipMemoryMaxBytes?: number;
  /** The disk tier for zips: its own directory and byte bound. @default none (zips are read from storage) */
  disk?: { dir: string; maxBytes: number };
  /** How purges reach the other replicas' caches. @default a {@link LocalInvalidationBus} (this process only) */
  bus?: InvalidationBus;
  /** Bytes read per chunk from the disk tier. @default 256 KiB */
  zipReadBytes?: number;
  events?: ContentCacheEvents;
}

/** What the cache holds right now, for gauges. */
export interface ContentCacheStats {
  memory: { bytes: number; entries: number; maxBytes: number };
  disk: { bytes: number; entries: number; maxBytes: number };
}

/** A read from storage under way: a purge that happens meanwhile marks it, and it is then not kept. */
interface PendingRead {
  purged: boolean;
}

type OpenedZip =
  | { kind: 'memory'; bytes: Buffer }
  | { kind: 'fill'; fill: ZipFill }
  | { kind: 'direct'; claim(): ZipContent | undefined };

const OP = 'content-cache';

/**
 * The per-replica cache of immutable module content, as a decorator of the storage port: a
 * canonical version's `.info`, `.mod` and small zips in a byte-bounded memory tier, larger zips
 * in a byte-bounded disk tier; both least recently used first out. A hit asks storage nothing.
 *
 * Only what never changes is cached: the info, go.mod and zip of a stored version. Lists,
 * existence of what is not cached, the catalog and the index always go to storage, and a
 * not-found is never remembered. A version leaves every replica's cache when it is deleted:
 * {@link delete} deletes it from storage, drops it here and publishes the invalidation on the
 * bus, which every replica's cache applies. A read from storage that a purge overtakes is served
 * to its callers but not kept.
 */
export class CachedStorage implements ModuleStorage {
  private readonly storage: ModuleStorage;
  private readonly memory: MemoryTier | undefined;
  private readonly disk: DiskTier | undefined;
  private readonly bus: InvalidationBus;
  private readonly zipMemoryMaxBytes: number;
  private readonly zipReadBytes: number;
  private readonly events: ContentCacheEvents;
  private readonly pending = new Map<string, Set<PendingRead>>();
  private readonly zipFlights = new Map<string, Promise<OpenedZip>>();
  private readonly fills = new Set<ZipFill>();
  private readonly closing = new AbortController();

  private constructor(options: CachedStorageOptions, disk: DiskTier | undefined) {
    this.storage = options.storage;
    this.events = options.events ?? {};
    const memoryMaxBytes = options.memoryMaxBytes ?? 32 * MiB;
    this.memory =
      memoryMaxBytes > 0
        ? new MemoryTier({
            maxBytes: memoryMaxBytes,
            onEvicted: (bytes) => this.events.evicted?.('memory', 'size', bytes),
          })
        : undefined;
    this.disk = disk;
    this.bus = options.bus ?? new LocalInvalidationBus();
    this.zipMemoryMaxBytes = options.zipMemoryMaxBytes ?? 64 * KiB;
    this.zipReadBytes = options.zipReadBytes ?? 256 * KiB;
  }

  /** Opens the disk tier (counting what a previous run left), then subscribes to the bus. */
  static async open(options: CachedStorageOptions): Promise<CachedStorage> {
    let disk: DiskTier | undefined;
    if (options.disk && options.disk.maxBytes > 0) {
      try {
        disk = await DiskTier.open({
          dir: options.disk.dir,
          maxBytes: options.disk.maxBytes,
          onEvicted: (bytes) => options.events?.evicted?.('disk', 'size', bytes),
        });
      } catch (error) {
        // Another process's (sharing it would have two indexes evict each other's files), or a
        // directory this process cannot write (a read-only root): a cache never stops serving.
        const reason =
          error instanceof DiskTierInUse
            ? error.message
            : `the content cache directory ${options.disk.dir} cannot be used: ${error instanceof Error ? error.message : String(error)}`;
        options.events?.diskTierUnavailable?.(reason);
      }
    }
    const cache = new CachedStorage(options, disk);
    await cache.bus.subscribe({
      invalidate: (ref) => cache.invalidate(ref, 'bus'),
      invalidateAll: () => cache.invalidateAll('invalidations may have been missed'),
    });
    return cache;
  }

  stats(): ContentCacheStats {
    return {
      memory: {
        bytes: this.memory?.bytes ?? 0,
        entries: this.memory?.size ?? 0,
        maxBytes: this.memory?.maxBytes ?? 0,
      },
      disk: {
        bytes: this.disk?.bytes ?? 0,
        entries: this.disk?.size ?? 0,
        maxBytes: this.disk?.maxBytes ?? 0,
      },
    };
  }

  async exists(module: string, version: string, options: CallOptions = {}): Promise<boolean> {
    throwIfAborted(`${OP}.exists`, options.signal, { module, version });
    const key = versionKey(module, version);
    if (this.memory) {
      for (const file of ['info', 'mod', 'zip'] as const) {
        if (this.memory.has(fileKey(file, key))) return true;
      }
    }
    if (this.disk?.has(key)) return true;
    return this.storage.exists(module, version, options);
  }

  info(module: string, version: string, options: CallOptions = {}): Promise<Buffer> {
    return this.small('info', module, version, options, () => this.storage.info(module, version, options));
  }

  mod(module: string, version: string, options: CallOptions = {}): Promise<Buffer> {
    return this.small('mod', module, version, options, () => this.storage.mod(module, version, options));
  }

  async zip(module: string, version: string, options: CallOptions = {}): Promise<ZipContent> {
    const op = `${OP}.zip`;
    const ref = { module, version };
    throwIfAborted(op, options.signal, ref);
    const key = versionKey(module, version);
    const inMemory = this.memory?.get(fileKey('zip', key));
    if (inMemory) {
      this.report('zip', 'memory');
      return memoryZip(inMemory);
    }
    if (this.disk) {
      const opened = await this.disk.openZip(key);
      if (opened) {
        this.report('zip', 'disk');
        // Large positional reads into chunks the lean path hands back once written (as from disk storage).
        const stream = new DiskZipStream(opened.fd, opened.size, this.zipReadBytes);
        return { size: opened.size, stream: followSignal(stream, options.signal, op, ref) };
      }
    }
    this.report('zip', 'storage');
    let flight = this.zipFlights.get(key);
    if (!flight) {
      const started = this.openZip(module, version, key);
      flight = started;
      this.zipFlights.set(key, started);
      // Nothing to share once opened, unless a fill is under way (it leaves when it is done).
      started.then(
        (opened) => {
          if (opened.kind !== 'fill') this.dropFlight(key, started);
        },
        () => this.dropFlight(key, started),
      );
    }
    // The caller that leaves gets its own `cancelled` (or `timeout`); the open goes on for the others.
    const opened = await waitUnlessAborted(flight, options.signal, (fired) => abortedError(op, fired, ref));
    switch (opened.kind) {
      case 'memory':
        return memoryZip(opened.bytes);
      case 'fill': {
        // A fill that failed before this caller joined it is no answer: ask storage afresh.
        if (opened.fill.status.state === 'failed') {
          this.dropFlight(key, flight);
          return this.zip(module, version, options);
        }
        const stream = opened.fill.reader(this.zipReadBytes);
        return { size: opened.fill.size, stream: followSignal(stream, options.signal, op, ref) };
      }
      case 'direct': {
        const content = opened.claim() ?? (await this.storage.zip(module, version, options));
        return { ...content, stream: followSignal(content.stream, options.signal, op, ref) };
      }
    }
  }

  /** Saved versions' info and go.mod go to the memory tier: the go command asks for them next. */
  async save(input: SaveInput, options: CallOptions = {}): Promise<void> {
    const key = versionKey(input.module, input.version);
    const read = this.track(key);
    try {
      await this.storage.save(input, options);
      if (this.memory && !read.purged) {
        this.memory.set(fileKey('info', key), input.info);
        this.memory.set(fileKey('mod', key), input.mod);
      }
    } finally {
      this.untrack(key, read);
    }
  }

  list(module: string, options?: CallOptions): Promise<string[]> {
    return this.storage.list(module, options);
  }

  /**
   * A purge ({@link purgeVersion}): deletes the version from storage, drops it here and tells
   * every replica's cache to drop it.
   */
  delete(module: string, version: string, options: CallOptions = {}): Promise<void> {
    const ref = { module, version };
    return purgeVersion(this.storage, this.bus, ref, options, () => this.invalidate(ref, 'local'));
  }

  catalog(options: CatalogOptions): Promise<CatalogPage> {
    return this.storage.catalog(options);
  }

  index(options: IndexOptions): Promise<IndexPage> {
    return this.storage.index(options);
  }

  async close(): Promise<void> {
    this.closing.abort(errors.unavailable(OP, 'the cache is closing'));
    const stopping = errors.unavailable(OP, 'the cache is closing');
    for (const fill of this.fills) fill.abort(stopping);
    await Promise.all([...this.fills].map((fill) => fill.done));
    await this.bus.close().catch(() => undefined);
    await this.disk?.close();
    await this.storage.close();
  }

  /** Drops module@version from both tiers; reads of it under way are not kept. */
  invalidate(ref: ModuleVersionRef, origin: InvalidationOrigin): void {
    const key = versionKey(ref.module, ref.version);
    for (const read of this.pending.get(key) ?? []) read.purged = true;
    // A fill under way serves its readers to the end, but nobody new joins it.
    this.zipFlights.delete(key);
    if (this.memory) {
      let freed = 0;
      for (const file of ['info', 'mod', 'zip'] as const) freed += this.memory.delete(fileKey(file, key));
      if (freed > 0) this.events.evicted?.('memory', 'invalidated', freed);
    }
    const freed = this.disk?.remove(key) ?? 0;
    if (freed > 0) this.events.evicted?.('disk', 'invalidated', freed);
    this.events.invalidated?.(origin);
  }

  /** Drops everything (invalidations may have been missed); reads under way are not kept. */
  invalidateAll(reason: string): void {
    for (const reads of this.pending.values()) for (const read of reads) read.purged = true;
    this.zipFlights.clear();
    const memory = this.memory?.clear();
    if (memory && memory.bytes > 0) this.events.evicted?.('memory', 'cleared', memory.bytes);
    const disk = this.disk?.clear();
    if (disk && disk.bytes > 0) this.events.evicted?.('disk', 'cleared', disk.bytes);
    // Starting empty is no news; dropping what was held is.
    if ((memory?.entries ?? 0) + (disk?.entries ?? 0) > 0) this.events.cleared?.(reason);
  }

  private async small(
    file: CachedFile,
    module: string,
    version: string,
    options: CallOptions,
    read: () => Promise<Buffer>,
  ): Promise<Buffer> {
    throwIfAborted(`${OP}.${file}`, options.signal, { module, version });
    const key = versionKey(module, version);
    const cached = this.memory?.get(fileKey(file, key));
    if (cached) {
      this.report(file, 'memory');
      // The port hands out copies: a caller may write into what it got. A few hundred bytes
      // from the allocation pool cost less than a cache anyone can corrupt.
      return Buffer.from(cached);
    }
    this.report(file, 'storage');
    if (!this.memory) return read();
    const pending = this.track(key);
    try {
      const bytes = await read();
      if (!pending.purged) this.memory.set(fileKey(file, key), bytes);
      return bytes;
    } finally {
      this.untrack(key, pending);
    }
  }

  /**
   * Opens the zip in storage once for every concurrent miss and decides where it goes: small
   * ones are read whole into memory, others are filled into the disk tier while the callers
   * follow, and what neither tier takes is handed to one caller as storage streams it.
   */
  private async openZip(module: string, version: string, key: string): Promise<OpenedZip> {
    const ref = { module, version };
    const pending = this.track(key);
    let tracked = true;
    try {
      // Not the caller's signal: the read is shared, and the cache wants it whoever leaves.
      const content = await this.storage.zip(module, version, { signal: this.closing.signal });
      if (this.memory && content.size <= this.zipMemoryMaxBytes && content.size < this.memory.maxBytes) {
        const bytes = await readWhole(content, ref);
        const kept = pending.purged ? undefined : this.memory.set(fileKey('zip', key), bytes);
        this.events.filled?.('memory', kept ? 'stored' : 'discarded', bytes.length);
        return { kind: 'memory', bytes: kept ?? bytes };
      }
      const reservation = this.disk && !pending.purged ? this.disk.reserve(content.size) : undefined;
      if (this.disk && reservation) {
        const fill = await ZipFill.start({
          ref,
          key,
          content,
          tier: this.disk,
          reservation,
          stillWanted: () => !pending.purged && !this.closing.signal.aborted,
        });
        this.fills.add(fill);
        tracked = false;
        const running = this.zipFlights.get(key);
        void fill.done.then((outcome) => {
          this.fills.delete(fill);
          this.untrack(key, pending);
          if (running) this.dropFlight(key, running);
          this.reportFill(outcome, fill.size);
        });
        return { kind: 'fill', fill };
      }
      let claimed = false;
      // Whoever waited for it takes it in their next microtask; nobody left means nobody reads it.
      setImmediate(() => {
        if (!claimed) content.stream.destroy();
      });
      return {
        kind: 'direct',
        claim: () => {
          if (claimed) return undefined;
          claimed = true;
          return content;
        },
      };
    } finally {
      if (tracked) this.untrack(key, pending);
    }
  }

  private reportFill(outcome: FillOutcome, bytes: number): void {
    if (outcome.result === 'failed') {
      // Our own shutdown is no failure of the copy.
      if (!this.closing.signal.aborted) this.events.fillFailed?.('disk', outcome.error);
      return;
    }
    this.events.filled?.('disk', outcome.result, bytes);
  }

  private dropFlight(key: string, flight: Promise<OpenedZip>): void {
    if (this.zipFlights.get(key) === flight) this.zipFlights.delete(key);
  }

  private track(key: string): PendingRead {
    const read: PendingRead = { purged: false };
    let reads = this.pending.get(key);
    if (!reads) {
      reads = new Set();
      this.pending.set(key, reads);
    }
    reads.add(read);
    return read;
  }

  private untrack(key: string, read: PendingRead): void {
    const reads = this.pending.get(key);
    if (!reads) return;
    reads.delete(read);
    if (reads.size === 0) this.pending.delete(key);
  }

  private report(file: CachedFile, source: 'memory' | 'disk' | 'storage'): void {
    try {
      this.events.read?.(file, source);
    } catch {
      // Metrics never change an answer.
    }
  }
}

/** A zip from the memory tier: one chunk, shared by every reader (read-only, as stream chunks are). */
function memoryZip(bytes: Buffer): ZipContent {
  let sent = false;
  const stream = new Readable({
    read() {
      if (sent) return;
      sent = true;
      this.push(bytes);
      this.push(null);
    },
  });
  return { size: bytes.length, stream };
}

/** Reads a small zip whole, checked against the size and SHA-256 storage gave. */
async function readWhole(content: ZipContent, ref: ModuleVersionRef): Promise<Buffer> {
  const op = `${OP}.fill`;
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const data of content.stream) {
      const chunk = chunkToBuffer(op, data);
      length += chunk.length;
      if (length > content.size) {
        throw errors.internal(op, `zip is longer than the ${content.size} bytes storage said`, ref);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    content.stream.destroy();
    throw toModuleError(error, op, ref);
  }
  if (length !== content.size) {
    throw errors.internal(op, `zip has ${length} bytes, storage said ${content.size}`, ref);
  }
  const bytes = Buffer.concat(chunks, length);
  if (content.sha256 !== undefined) {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (sha256 !== content.sha256.toLowerCase()) {
      throw errors.internal(op, `zip SHA-256 ${sha256} is not the ${content.sha256} storage said`, ref);
    }
  }
  return bytes;
}

/** The caller's signal ends its own stream (the port's promise), and only that. */
function followSignal<S extends Readable>(
  stream: S,
  signal: AbortSignal | undefined,
  op: string,
  ref: ModuleVersionRef,
): S {
  if (!signal) return stream;
  if (signal.aborted) {
    stream.destroy(abortedError(op, signal, ref));
    return stream;
  }
  const onAbort = () => stream.destroy(abortedError(op, signal, ref));
  signal.addEventListener('abort', onAbort, { once: true });
  stream.once('close', () => signal.removeEventListener('abort', onAbort));
  return stream;
}
